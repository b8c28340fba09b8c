// Package crashpoint lets the crash tests kill a process for real at a
// chosen step of a write: when the environment variable FERRY_CRASHPOINT
// names a step, the first process to reach that step sends itself SIGKILL
// there. Without the variable (always, outside those tests) every call is
// one string comparison and does nothing. It is a test hook, not a feature:
// users have no reason to set the variable.
package crashpoint

import (
	"os"
	"syscall"
)

// envVar names the step to crash at.
const envVar = "FERRY_CRASHPOINT"

// armed is the step this process crashes at ("" for none).
var armed = os.Getenv(envVar)

// Armed reports whether this process is to crash at step; a step that needs
// another code path to be reached (the link-and-unlink commit of file
// systems without RENAME_NOREPLACE) takes it when armed.
func Armed(step string) bool { return armed != "" && armed == step }

// Here kills the process with SIGKILL when it is armed for step: no
// deferred function, no buffered write, no cleanup runs, as in a crash.
func Here(step string) {
	if Armed(step) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is delivered before any further step
	}
}
