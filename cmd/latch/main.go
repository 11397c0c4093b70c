// Command latch is the Latch identity server and API security gateway: it
// serves (latch serve), administers a running server (latch admin …),
// migrates its store, rotates its keys and prints its configuration. Run
// `latch help` for the commands.
package main

import (
	"os"

	"github.com/latchid/latch/cmd/latch/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
