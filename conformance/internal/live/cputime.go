package live

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of the processor times in /proc/<pid>/stat: the
// USER_HZ of Linux, which is 100 on every architecture Go supports.
const clockTick = 10 * time.Millisecond

// CPUTime returns the processor time, user and system, that the server
// process has used so far. It reads /proc, so it is Linux only; elsewhere
// it fails. The resolution is 10 ms.
func (s *Server) CPUTime() (time.Duration, error) {
	return ProcessCPUTime(s.cmd.Process.Pid)
}

// ProcessCPUTime returns the processor time, user and system, that
// process pid (os.Getpid() for this one) has used so far, as CPUTime.
// Benchmarks compare processor time per operation rather than wall-clock
// rates where the machine is shared: other processes then slow the
// clock, not the work.
func ProcessCPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the processor time of process %d: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// the fields after it start with field 3 (state). utime and stime are
	// fields 14 and 15 (proc(5)).
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("reading the processor time: unexpected /proc stat format")
	}
	f := bytes.Fields(raw[i+1:])
	if len(f) < 13 {
		return 0, errors.New("reading the processor time: unexpected /proc stat format")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the processor time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
