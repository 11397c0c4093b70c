// Package plugintest is the test harness for Latch WASM guests written
// with the SDK: in a plain, native `go test` it drives the module's own
// dispatcher (sdk/plugin) with real abi encoding — every request is encoded
// into a Call envelope, handled, and the Reply decoded — while a fake host
// answers the host functions (sdk/host, guest.Log, guest.Now,
// guest.Random).
//
// Testing an extension:
//
//  1. Register it as the module does, from an init function (the package
//     under test is usually the module's main package, so its init already
//     ran).
//  2. h := plugintest.New(t) in each test.
//  3. Seed the fake host: h.SetKV, h.SetSecret, h.SetConfig, h.SetUser,
//     h.HandleHTTP, h.SetNow.
//  4. h.Configure(name, configJSON), then call the kind's operation:
//     h.Authenticate(name, req), h.Token, h.GetUser, h.Allow, ….
//  5. Check the response, the error (a *plugin.Error carrying the code,
//     whether the call failed as a call or the response carries an Error),
//     h.Logs() and h.Audits().
//
// The fake host enforces what the real one does: a host call whose
// capability the module did not declare in plugin.Meta is refused as
// forbidden, an HTTP request to a host outside the declared hosts too, and
// using guest.Log, guest.Now or guest.Random without declaring its
// capability fails the test (the real host refuses to load such a module).
//
// # What it does not do
//
// The harness runs the guest's Go code natively, not as WebAssembly. To run
// the built module under the real WASM host (wazero, the memory and time
// limits, the import checks), use the conformance kit (conformance/abi)
// and `latch plugin test`, which load it through the kernel. The harness
// cannot do that itself: sdk must not import the kernel (the architecture's
// one rule of direction), and plugin authors' tests should not need to.
//
// The module's extensions are the process's registered values, shared by
// every harness as they are by every call to one WASM instance; calls are
// serialised across harnesses, so tests may use t.Parallel.
//
// The harness exists only outside wasip1 builds (it stands in for the host
// through guest.SetTestHost, which a real guest does not have).
package plugintest
