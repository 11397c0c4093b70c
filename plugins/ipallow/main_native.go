//go:build !wasip1

package main

import "github.com/latchid/latch/sdk/plugin/native"

// main serves the module as a native plugin: `go build .` makes a binary
// the server runs as the plugin's command.
func main() { native.Serve() }
