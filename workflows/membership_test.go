package workflows

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/cachenode/ring"
)

func member(id string) ring.Member {
	return ring.Member{ID: id, Identity: ring.IdentityFromName(id), Host: "127.0.0.1", HTTPPort: 28080, TaskQueue: ring.TaskQueueFor(id)}
}

func newMembershipEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MembershipWorkflow, workflow.RegisterOptions{Name: membership.WorkflowType})
	return env
}

func members(t *testing.T, env *testsuite.TestWorkflowEnvironment) []string {
	t.Helper()
	v, err := env.QueryWorkflow(membership.QueryMembers)
	if err != nil {
		t.Fatal(err)
	}
	var s membership.Snapshot
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(s.Members))
	for i, r := range s.Members {
		ids[i] = r.Member.ID
	}
	return ids
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMembershipJoinLeaveExpire(t *testing.T) {
	env := newMembershipEnv(t)
	const expire = 8 * time.Second
	heartbeat := func(id string) {
		env.SignalWorkflow(membership.SignalHeartbeat, membership.Heartbeat{Member: member(id)})
	}
	check := func(at time.Duration, want ...string) {
		env.RegisterDelayedCallback(func() {
			if got := members(t, env); !equal(got, want) {
				t.Errorf("at %s: members %v, want %v", at, got, want)
			}
		}, at)
	}
	env.RegisterDelayedCallback(func() { heartbeat("node-2"); heartbeat("node-1") }, 0)
	check(time.Second, "node-1", "node-2")
	// node-1 keeps heartbeating every 3 s; node-2 goes silent.
	for at := 3 * time.Second; at <= 30*time.Second; at += 3 * time.Second {
		env.RegisterDelayedCallback(func() { heartbeat("node-1") }, at)
	}
	check(7*time.Second, "node-1", "node-2")
	check(9*time.Second, "node-1") // node-2 expired 8 s after its last heartbeat
	// node-2 comes back; node-3 joins and leaves cleanly.
	env.RegisterDelayedCallback(func() { heartbeat("node-2"); heartbeat("node-3") }, 10*time.Second)
	check(11*time.Second, "node-1", "node-2", "node-3")
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(membership.SignalLeave, membership.Leave{ID: "node-3"})
	}, 12*time.Second)
	check(12*time.Second+time.Millisecond, "node-1", "node-2")
	// Everybody silent: the registry empties and stays idle.
	check(40 * time.Second)
	env.RegisterDelayedCallback(env.CancelWorkflow, 60*time.Second)

	env.ExecuteWorkflow(membership.WorkflowType, membership.RegistryInput{ExpireAfter: expire})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not finish")
	}
}

func TestMembershipContinuesAsNewCarryingMembers(t *testing.T) {
	env := newMembershipEnv(t)
	for i := range 5 {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(membership.SignalHeartbeat, membership.Heartbeat{Member: member("node-1")})
			env.SignalWorkflow(membership.SignalHeartbeat, membership.Heartbeat{Member: member("node-2")})
		}, time.Duration(i)*time.Second)
	}
	env.ExecuteWorkflow(membership.WorkflowType, membership.RegistryInput{MaxSignalsPerRun: 6})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next membership.RegistryInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if len(next.Members) != 2 || next.Members[0].Member.ID != "node-1" || next.MaxSignalsPerRun != 6 || next.ExpireAfter != membership.DefaultExpireAfter {
		t.Fatalf("carried input %+v", next)
	}
	if next.Members[0].JoinedAt.After(next.Members[0].LastSeen) {
		t.Fatalf("joined after last seen: %+v", next.Members[0])
	}
}
