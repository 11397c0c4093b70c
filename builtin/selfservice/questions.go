package selfservice

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Security questions: a signed-in user answers some of the tenant's
// questions (self_service.questions) at /account/security-questions; the
// answers are normalised and stored as argon2id hashes. Recovery by
// questions (/recover/questions) asks self_service.questions_asked of them
// and, when every answer matches, issues the same single-use reset link an
// email would carry. Attempts are bounded per challenge and per account.
const (
	PathQuestions        = "/account/security-questions"
	PathRecoverQuestions = "/recover/questions"

	// AttrQuestionFailures counts failed recoveries by questions since
	// the last password change; at maxQuestionFailures the account can
	// no longer be recovered that way.
	AttrQuestionFailures = "latch.security_question_failures"

	kindQuestions          = "recovery_questions"
	maxChallengeAttempts   = 3
	maxQuestionFailures    = 5
	defaultQuestionsAsked  = 2
	questionChallengeTTL   = 10 * time.Minute
	maxAnswerLength        = 256
	minAnswerRunes         = 2
	questionsAskedOverflow = 8
)

func (s *Service) mountQuestions(app *fiber.App, prefix string) {
	app.Get(prefix+PathQuestions, s.getQuestions)
	app.Post(prefix+PathQuestions, s.postQuestions)
	app.Get(prefix+PathRecoverQuestions, s.getRecoverQuestions)
	app.Post(prefix+PathRecoverQuestions, s.postRecoverQuestions)
}

// normaliseAnswer makes answers that differ only in case, spacing or
// punctuation equal.
func normaliseAnswer(a string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(strings.ToLower(a), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

// answerInput binds an answer to its question so that one hash cannot be
// replayed for another question.
func answerInput(q int, a string) string {
	return "q" + strconv.Itoa(q) + ":" + normaliseAnswer(a)
}

func asked(ss Settings) int {
	n := ss.QuestionsAsked
	if n <= 0 {
		n = defaultQuestionsAsked
	}
	return min(n, len(ss.Questions), questionsAskedOverflow)
}

// getQuestions shows the signed-in user's form to set answers.
func (s *Service) getQuestions(c *fiber.Ctx) error {
	return s.questionsPage(c, nil, http.StatusOK)
}

func (s *Service) questionsPage(c *fiber.Ctx, errs []string, status int) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || len(ss.Questions) == 0 {
		return s.notFound(c)
	}
	sess, err := s.d.Login.Session(c, t.ID, t.Name)
	if err != nil {
		return s.fail(c, err)
	}
	if sess == nil {
		return c.Redirect(s.d.Login.LoginURL(base, base+PathQuestions, login.Options{}), http.StatusSeeOther)
	}
	v := s.newView(c, t, "questions.title")
	if v.CSRF, err = s.d.Login.CSRFToken(c); err != nil {
		return s.fail(c, err)
	}
	v.Errors = errs
	v.Message = strings.ReplaceAll(tr(v.Lang, "questions.intro"), "%d", strconv.Itoa(asked(ss)))
	v.Action, v.Submit = s.basePath()+base+PathQuestions, tr(v.Lang, "questions.submit")
	for i, q := range ss.Questions {
		v.Fields = append(v.Fields, field{Name: "q" + strconv.Itoa(i), Label: q, Type: "password", Autocomplete: "off", Optional: true})
	}
	return s.render(c, status, v)
}

func (s *Service) postQuestions(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || len(ss.Questions) == 0 {
		return s.notFound(c)
	}
	sess, err := s.d.Login.Session(c, t.ID, t.Name)
	if err != nil {
		return s.fail(c, err)
	}
	if sess == nil {
		return c.Redirect(s.d.Login.LoginURL(base, base+PathQuestions, login.Options{}), http.StatusSeeOther)
	}
	form, ok, err := s.form(c, t, base)
	if !ok {
		return err
	}
	lang := language(c.Get(fiber.HeaderAcceptLanguage))
	set := map[string]string{}
	for i := range ss.Questions {
		a := form.Get("q" + strconv.Itoa(i))
		if strings.TrimSpace(a) == "" {
			continue
		}
		if len(a) > maxAnswerLength || len([]rune(normaliseAnswer(a))) < minAnswerRunes {
			return s.questionsPage(c, []string{tr(lang, "questions.short")}, http.StatusBadRequest)
		}
		h, err := s.d.Hasher.Hash(answerInput(i, a))
		if err != nil {
			return s.fail(c, err)
		}
		set[strconv.Itoa(i)] = h
	}
	if len(set) < asked(ss) {
		return s.questionsPage(c, []string{strings.ReplaceAll(tr(lang, "questions.few"), "%d", strconv.Itoa(asked(ss)))}, http.StatusBadRequest)
	}
	ctx := c.UserContext()
	u, err := s.d.Store.GetUser(ctx, t.ID, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return s.notFound(c) // an account outside the database
	} else if err != nil {
		return s.fail(c, err)
	}
	// The hashes are a record of their own (records.go), keyed by the
	// question's number (its index, from 0, in self_service.questions).
	if err := s.saveRecord(ctx, t.ID, kindAnswers, u.ID, set); err != nil {
		return s.fail(c, err)
	}
	if _, failed := u.Attributes[AttrQuestionFailures]; failed {
		delete(u.Attributes, AttrQuestionFailures)
		if _, err := s.d.Store.UpdateUser(ctx, u); err != nil {
			return s.fail(c, err)
		}
	}
	s.publish(c, t.ID, event.Ref("user", u.ID), "user.security_questions_set", event.OutcomeSuccess, map[string]any{"answers": len(set)})
	v := s.newView(c, t, "questions.title")
	v.Message = tr(v.Lang, "questions.saved")
	return s.render(c, http.StatusOK, v)
}

// challenge is a recovery by questions in progress (a store.Token of kind
// recovery_questions; Subject empty for an unknown account).
type challenge struct {
	Questions []int `json:"q"`
	Attempts  int   `json:"a"`
}

// pick chooses n of the candidate question numbers, the same ones for the
// same name every time (so that asking again shows nothing new, and an
// unknown account looks like a known one).
func pick(candidates []int, n int, name string) []int {
	sum := sha256.Sum256([]byte("latch/questions/" + strings.ToLower(name)))
	c := append([]int(nil), candidates...)
	seed := binary.BigEndian.Uint64(sum[:8])
	for i := len(c) - 1; i > 0; i-- {
		j := int(seed % uint64(i+1)) //nolint:gosec // G115: below i+1, which is an int.
		seed = seed*6364136223846793005 + 1442695040888963407
		c[i], c[j] = c[j], c[i]
	}
	return c[:min(n, len(c))]
}

func (s *Service) getRecoverQuestions(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || !ss.Recovery || len(ss.Questions) == 0 {
		return s.notFound(c)
	}
	v := s.newView(c, t, "recover.title")
	if v.CSRF, err = s.d.Login.CSRFToken(c); err != nil {
		return s.fail(c, err)
	}
	v.Message = tr(v.Lang, "recover.questions_intro")
	v.Action, v.Submit = s.basePath()+base+PathRecoverQuestions, tr(v.Lang, "login.continue")
	v.Fields = []field{{Name: "identifier", Label: tr(v.Lang, "field.username"), Type: "text", Autocomplete: "username"}}
	return s.render(c, http.StatusOK, v)
}

// postRecoverQuestions either starts a challenge (a username posted) or
// checks its answers (a challenge id posted).
func (s *Service) postRecoverQuestions(c *fiber.Ctx) error {
	t, base, ok, err := s.tenant(c)
	if err != nil {
		return s.fail(c, err)
	}
	ss := settingsOf(t)
	if !ok || !ss.Recovery || len(ss.Questions) == 0 {
		return s.notFound(c)
	}
	form, ok, err := s.form(c, t, base)
	if !ok {
		return err
	}
	ctx := c.UserContext()
	v := s.newView(c, t, "recover.title")
	v.CSRF = form.Get("csrf")
	v.Action, v.Submit = s.basePath()+base+PathRecoverQuestions, tr(v.Lang, "login.continue")
	if id := form.Get("challenge"); id != "" {
		return s.checkAnswers(c, t, base, ss, v, id, form)
	}
	name := strings.TrimSpace(form.Get("identifier"))
	if name == "" || len(name) > 256 {
		return s.d.Login.RenderError(c, http.StatusBadRequest, login.Page{Base: base, Brand: t.DisplayName}, "error.request", "")
	}
	all := make([]int, len(ss.Questions))
	for i := range all {
		all[i] = i
	}
	qs := pick(all, asked(ss), name)
	subject := ""
	u, err := s.d.Store.GetUserByUsername(ctx, t.ID, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return s.fail(c, err)
	default:
		have, err := s.answers(ctx, t.ID, u.ID)
		if err != nil {
			return s.fail(c, err)
		}
		var mine []int
		for i := range ss.Questions {
			if _, ok := have[strconv.Itoa(i)]; ok {
				mine = append(mine, i)
			}
		}
		failures, _ := u.Attributes[AttrQuestionFailures].(float64)
		if u.Enabled && len(mine) >= asked(ss) && int(failures) < maxQuestionFailures {
			subject, qs = u.ID, pick(mine, asked(ss), name)
		}
	}
	id, err := secret.RandomToken(24)
	if err != nil {
		return s.fail(c, err)
	}
	data, _ := json.Marshal(challenge{Questions: qs})
	now := s.now()
	if err := s.d.Store.CreateToken(ctx, store.Token{Kind: kindQuestions, Key: tokenKey(id), TenantID: t.ID, Subject: subject, Active: true, Data: data, CreatedAt: now, ExpiresAt: now.Add(questionChallengeTTL)}); err != nil {
		return s.fail(c, err)
	}
	return s.render(c, http.StatusOK, questionsForm(v, ss, id, qs, nil))
}

func questionsForm(v view, ss Settings, id string, qs []int, errs []string) view {
	v.Errors = errs
	v.Message = tr(v.Lang, "recover.answer")
	v.Hidden = []hidden{{"challenge", id}}
	v.Fields = nil
	for _, q := range qs {
		v.Fields = append(v.Fields, field{Name: "q" + strconv.Itoa(q), Label: ss.Questions[q], Type: "password", Autocomplete: "off"})
	}
	return v
}

func (s *Service) checkAnswers(c *fiber.Ctx, t store.Tenant, base string, ss Settings, v view, id string, form url.Values) error {
	ctx := c.UserContext()
	tok, err := s.d.Store.GetToken(ctx, t.ID, kindQuestions, tokenKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.now().Before(tok.ExpiresAt)) {
		v.Action, v.Errors = "", []string{tr(v.Lang, "token.invalid")}
		return s.render(c, http.StatusBadRequest, v)
	} else if err != nil {
		return s.fail(c, err)
	}
	var ch challenge
	if json.Unmarshal(tok.Data, &ch) != nil || len(ch.Questions) == 0 {
		return s.fail(c, errors.New("malformed security question challenge"))
	}
	var u store.User
	good := tok.Subject != ""
	if good {
		if u, err = s.d.Store.GetUser(ctx, t.ID, tok.Subject); err != nil {
			good = false
		}
	}
	have, err := s.answers(ctx, t.ID, u.ID)
	if err != nil {
		return s.fail(c, err)
	}
	for _, q := range ch.Questions {
		a := form.Get("q" + strconv.Itoa(q))
		h, ok := have[strconv.Itoa(q)]
		if !ok || len(a) > maxAnswerLength {
			// Spend the time of a check all the same.
			_, _ = s.d.Hasher.Hash(answerInput(q, a))
			good = false
			continue
		}
		if match, _, err := s.d.Hasher.Verify(answerInput(q, a), h); err != nil || !match {
			good = false
		}
	}
	if !good {
		ch.Attempts++
		if tok.Subject != "" && u.ID != "" {
			failures, _ := u.Attributes[AttrQuestionFailures].(float64)
			u.Attributes[AttrQuestionFailures] = failures + 1
			_, _ = s.d.Store.UpdateUser(ctx, u)
		}
		_ = s.d.Store.DeleteToken(ctx, t.ID, kindQuestions, tok.Key)
		if ch.Attempts >= maxChallengeAttempts {
			s.publish(c, t.ID, "anonymous", ActionRecovery, event.OutcomeFailure, map[string]any{"via": "questions"})
			v.Action, v.Errors = "", []string{tr(v.Lang, "recover.too_many")}
			return s.render(c, http.StatusForbidden, v)
		}
		data, _ := json.Marshal(ch)
		tok.Data = data
		if err := s.d.Store.CreateToken(ctx, tok); err != nil {
			return s.fail(c, err)
		}
		return s.render(c, http.StatusUnauthorized, questionsForm(v, ss, id, ch.Questions, []string{tr(v.Lang, "recover.wrong")}))
	}
	if err := s.d.Store.DeleteToken(ctx, t.ID, kindQuestions, tok.Key); err != nil {
		return s.fail(c, err) // spent meanwhile
	}
	reset, err := secret.RandomToken(32)
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	if err := s.d.Store.CreateToken(ctx, store.Token{Kind: kindRecover, Key: tokenKey(reset), TenantID: t.ID, Subject: u.ID, Active: true, CreatedAt: now, ExpiresAt: now.Add(questionChallengeTTL)}); err != nil {
		return s.fail(c, err)
	}
	s.publish(c, t.ID, event.Ref("user", u.ID), ActionRecovery, "answered", map[string]any{"via": "questions"})
	return c.Redirect(s.d.PublicURL+base+PathReset+"?token="+url.QueryEscape(reset), http.StatusSeeOther)
}
