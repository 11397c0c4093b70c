//go:build wasip1

package main

// main never runs in a reactor guest.
func main() {}
