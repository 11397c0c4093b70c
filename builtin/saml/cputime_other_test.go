//go:build !unix

package saml_test

import "time"

// cpuTime is the CPU time this process has used; zero where it cannot be
// read, as here.
func cpuTime() time.Duration { return 0 }
