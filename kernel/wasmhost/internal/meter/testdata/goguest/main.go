// Command goguest is a Go wasip1 reactor for the meter tests: work with
// loops, maps, sorting and formatting whose result must not change when
// the module is instrumented, and an endless loop for the host to stop.
package main

import (
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
)

func main() {}

// work returns a checksum of some allocation-heavy work on n.
//
//go:wasmexport work
func work(n int32) int32 {
	m := map[string]int{}
	var keys []string
	for i := range int(n) {
		k := fmt.Sprintf("key-%d", i*7919%int(n+1))
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
		m[k] += i
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d;", k, m[k])
	}
	return int32(crc32.ChecksumIEEE([]byte(b.String())))
}

var sink int

// spin never returns.
//
//go:wasmexport spin
func spin() {
	for i := 0; ; i++ {
		sink += i
	}
}
