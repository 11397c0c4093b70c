package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchid/latch/kernel/fault"
)

func ExampleHost_Load() {
	ctx := context.Background()
	host, err := New(ctx, Options{}) // in a server: CacheDir, Logger and Registerer set
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = host.Close(ctx) }()

	// tinyEcho is a hand-assembled Latch ABI v1 module that replies with
	// its call. A plugin author builds one from Go with sdk/guest and
	// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
	m, err := host.Load(ctx, "example.echo", tinyEcho(), ModuleOptions{
		MaxInstances: 4,
		CallTimeout:  100 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	reply, err := m.Call(ctx, []byte("hello"))
	fmt.Printf("%s %v\n", reply, err)

	_, err = host.Load(ctx, "example.trap", tinyUnreachable(), ModuleOptions{})
	fmt.Println(err)
	m = host.Module("example.trap")
	_, err = m.Call(ctx, []byte("hello"))
	fmt.Println(errors.Is(err, ErrTrapped), errors.Is(err, fault.Internal))

	_, err = host.Load(ctx, "example.text", []byte("hello"), ModuleOptions{})
	fmt.Println(err)
	// Output:
	// hello <nil>
	// <nil>
	// true true
	// module example.text: invalid WebAssembly module: the file does not begin with the WebAssembly magic number \0asm
}
