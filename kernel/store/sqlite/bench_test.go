package sqlite_test

import (
	"testing"

	"github.com/latchid/latch/kernel/store/storetest"
)

func BenchmarkCreateUser(b *testing.B)        { storetest.BenchCreateUser(b, open(b)) }
func BenchmarkGetUser(b *testing.B)           { storetest.BenchGetUser(b, open(b)) }
func BenchmarkGetUserByUsername(b *testing.B) { storetest.BenchGetUserByUsername(b, open(b)) }
func BenchmarkListUsers(b *testing.B)         { storetest.BenchListUsers(b, open(b)) }
func BenchmarkAppendAudit(b *testing.B)       { storetest.BenchAppendAudit(b, open(b)) }
