package adaptive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/latchid/latch/kernel/fault"
)

// MaxTryItBytes bounds a try-it request.
const MaxTryItBytes = 2 << 20

// maxTryItRounds bounds the evaluations of one try-it run.
const maxTryItRounds = 32

// TryItRequest runs a script against a synthetic login. Steps, prompts and
// HTTP calls are answered from Outcomes, never by real authenticators or
// the network.
type TryItRequest struct {
	// Script is the source; empty runs the default flow.
	Script string `json:"script"`
	// Input is the synthetic login; its History is where the run starts
	// (usually empty).
	Input Input `json:"input"`
	// Directory answers user, session, secret and library look-ups.
	Directory StaticHost `json:"directory"`
	// Outcomes answers what the script asks for.
	Outcomes TryItOutcomes `json:"outcomes"`
}

// TryItOutcomes are the scripted answers. Lists are consumed in order, so
// a step that is retried can fail first and succeed next.
type TryItOutcomes struct {
	// Steps by step number ("1"): success, subject, authenticator, idp.
	Steps map[string][]Entry `json:"steps,omitempty"`
	// Prompts by template id: success and values.
	Prompts map[string][]Entry `json:"prompts,omitempty"`
	// HTTP by URL: status, body, error. A URL without an answer fails as
	// unreachable.
	HTTP map[string]Entry `json:"http,omitempty"`
}

// TryItResult is what the run did.
type TryItResult struct {
	// Decisions are the decisions of each evaluation, in order; the last
	// one ends the run (complete, fail or send_error) unless Error is set.
	Decisions []Decision `json:"decisions"`
	// History is the login's History at the end.
	History []Entry `json:"history"`
	// Error describes the script error that ended the run, with the
	// detail an administrator needs.
	Error *TryItError `json:"error,omitempty"`
}

// TryItError is a script error as the try-it endpoint reports it.
type TryItError struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	Line    int       `json:"line,omitempty"`
	Column  int       `json:"column,omitempty"`
}

// TryIt compiles req.Script and runs the login to its end. Script errors
// (syntax, throws, limits) are reported in the result; the error return
// is for a request that cannot be run at all.
func (e *Engine) TryIt(ctx context.Context, req TryItRequest) (TryItResult, error) {
	res := TryItResult{Decisions: []Decision{}}
	var s *Script
	if req.Script != "" {
		var err error
		if s, err = e.Compile("try-it", req.Script); err != nil {
			res.Error = tryItError(err)
			return res, nil
		}
	}
	in := req.Input
	used := map[string]int{}
	next := func(kind string, list []Entry) (Entry, bool) {
		i := used[kind]
		if i >= len(list) {
			return Entry{}, false
		}
		used[kind] = i + 1
		return list[i], true
	}
	do := func(_ context.Context, hr *httpRequest) Entry {
		en, ok := req.Outcomes.HTTP[hr.URL]
		if !ok {
			return Entry{Kind: EntryHTTP, URL: hr.URL, Error: "no scripted answer for this URL in outcomes.http"}
		}
		en.Kind, en.URL = EntryHTTP, hr.URL
		en.Success = en.Error == "" && en.Status >= 200 && en.Status < 300
		return en
	}
	for range maxTryItRounds {
		dec, err := e.evaluate(ctx, s, &in, do, &req.Directory)
		if err != nil {
			res.Error = tryItError(err)
			break
		}
		res.Decisions = append(res.Decisions, dec)
		in.History = append(in.History, dec.Record...)
		var en Entry
		var ok bool
		switch dec.Kind {
		case DecisionExecuteStep:
			key := strconv.Itoa(dec.Step.Number)
			en, ok = next("step:"+key, req.Outcomes.Steps[key])
			if !ok {
				res.Error = &TryItError{Kind: KindHistory, Message: fmt.Sprintf("the script asked for step %d but outcomes.steps[%q] has no answer left", dec.Step.Number, key)}
				break
			}
			en.Kind, en.Step = EntryStep, dec.Step.Number
			if en.Success && en.Subject == nil {
				res.Error = &TryItError{Kind: KindHistory, Message: fmt.Sprintf("outcomes.steps[%q]: a successful step needs a subject", key)}
				ok = false
			}
		case DecisionPrompt:
			en, ok = next("prompt:"+dec.Prompt.Template, req.Outcomes.Prompts[dec.Prompt.Template])
			if !ok {
				res.Error = &TryItError{Kind: KindHistory, Message: fmt.Sprintf("the script showed prompt %q but outcomes.prompts has no answer left", dec.Prompt.Template)}
			}
			en.Kind = EntryPrompt
		default:
			res.History = in.History
			return res, nil
		}
		if !ok {
			break
		}
		in.History = append(in.History, en)
	}
	if res.Error == nil {
		res.Error = &TryItError{Kind: KindHistory, Message: fmt.Sprintf("the login did not end within %d evaluations", maxTryItRounds)}
	}
	res.History = in.History
	return res, nil
}

func tryItError(err error) *TryItError {
	var se *ScriptError
	if errors.As(err, &se) {
		return &TryItError{Kind: se.Kind, Message: se.Error(), Line: se.Line, Column: se.Column}
	}
	return &TryItError{Kind: KindRuntime, Message: err.Error()}
}

// TryItJSON is TryIt over JSON, for the admin API: it decodes the request
// strictly (unknown fields refused) and encodes the result. A malformed
// request gives a fault.InvalidRequest naming the problem.
//
// Mount it as POST /admin/v1/adaptive/try-it (admin scope).
func (e *Engine) TryItJSON(ctx context.Context, body []byte) ([]byte, error) {
	if len(body) > MaxTryItBytes {
		return nil, fault.InvalidRequest.WithMessagef("the request is larger than %d bytes", MaxTryItBytes)
	}
	var req TryItRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fault.InvalidRequest.WithMessagef("decoding the try-it request: %v", err).WithCause(err)
	}
	if dec.More() {
		return nil, fault.InvalidRequest.WithMessage("decoding the try-it request: trailing data after the JSON object")
	}
	res, err := e.TryIt(ctx, req)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding the try-it result: %w", err)
	}
	return out, nil
}
