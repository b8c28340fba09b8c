package integrity

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// The environment of a node process started by TestCrashAtEveryCommitStep.
const (
	envChild     = "FERRY_CRASH_CHILD"
	envTemporal  = "FERRY_CRASH_TEMPORAL"
	envNamespace = "FERRY_CRASH_NAMESPACE"
	envManifests = "FERRY_CRASH_MANIFESTS"
	envS3        = "FERRY_CRASH_S3"
	envGCS       = "FERRY_CRASH_GCS"
	crashNode    = "crash-node"
	childReady   = "crash node ready"
)

// TestCrashNodeProcess is not a test: it is the node process of
// TestCrashAtEveryCommitStep (this test binary started again with
// FERRY_CRASH_CHILD set). It serves the node's task queue of the parent's
// in-process Temporal with the real CopyBatch over the local, S3 and GCS
// backends, until it is killed, or until its standard input closes (the
// parent is gone). With FERRY_CRASHPOINT set it kills itself with SIGKILL
// at that step of its first write that reaches it (package crashpoint).
func TestCrashNodeProcess(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("the node process of TestCrashAtEveryCommitStep")
	}
	c, err := client.Dial(client.Options{HostPort: os.Getenv(envTemporal), Namespace: os.Getenv(envNamespace), DataConverter: bytesjson.DataConverter()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(st, s3test.NewStore(t, s3test.Options(os.Getenv(envS3))), gcstest.NewStore(t, gcstest.Options(os.Getenv(envGCS))))
	man, err := manifest.New(res, os.Getenv(envManifests))
	if err != nil {
		t.Fatal(err)
	}
	w := sdkworker.New(c, ring.TaskQueueFor(crashNode), worker.NodeOptions())
	worker.RegisterNode(w, &activities.Node{Resolver: res, Manifests: man})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	fmt.Println(childReady)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// crashCase is one commit step to crash at, with the destination whose
// writer has it.
type crashCase struct {
	step, dst string
	typ       workflows.JobType
}

// crashCases are the commit steps of every writer: the local file system's
// (bytes written to the partial file; renamed into place; and, where the
// file system lacks RENAME_NOREPLACE, linked but the partial name not yet
// removed), S3's (a single PUT done; all parts of a multipart upload sent
// but not completed; completed) and GCS's (bytes written, the upload not
// finalized; finalized).
var crashCases = []crashCase{
	{"local.written", "file", workflows.JobMove}, {"local.renamed", "file", workflows.JobMove}, {"local.linked", "file", workflows.JobMove},
	{"s3.put", "s3", workflows.JobMove}, {"s3.parts", "s3", workflows.JobMove}, {"s3.completed", "s3", workflows.JobMove},
	{"gcs.written", "gcs", workflows.JobMove}, {"gcs.closed", "gcs", workflows.JobMove},
	// A copy killed after a commit: the batch's next attempt finds the
	// file at the destination with the source's bytes and counts it
	// copied (its own commit), not skipped as "already at the destination".
	{"local.renamed", "file", workflows.JobCopy}, {"s3.completed", "s3", workflows.JobCopy},
}

// TestCrashAtEveryCommitStep is issue 11 case 11 with real kills: for every
// commit step of the local, S3 and GCS writers, a move's node process is
// killed with SIGKILL at that step (it kills itself when it gets there, so
// the point is exact), a new node process takes over, and the job must end
// SUCCEEDED with every file moved: the destination equals the source, the
// source is empty (deleted only after its copy was committed and checked),
// and no partial file (local) or incomplete multipart upload (S3) is left.
// The cases run in parallel; each waits once for the heartbeat timeout
// that tells the workflow its batch's node died.
func TestCrashAtEveryCommitStep(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes in -short mode")
	}
	s3srv, gcsSrv := s3test.Start(t), gcstest.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	gcsSt := gcstest.NewStore(t, gcstest.Options(gcsSrv.URL))
	tree := map[string]string{
		"big.bin":              string(pattern('B', 6<<20+1)), // a multipart upload on S3, a resumable one on GCS
		"small-1.txt":          "one",
		"dir/small-2.txt":      "two",
		"dir/deep/small-3.txt": "three",
	}
	var total int64
	for _, v := range tree {
		total += int64(len(v))
	}
	for _, tc := range crashCases {
		name := tc.step
		if tc.typ != workflows.JobMove {
			name += "/" + string(tc.typ)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cl := enginetest.NewCluster(t, 0, s3st, gcsSt)
			cl.AddMember(crashNode)
			base := t.TempDir()
			src := filepath.Join(base, "src")
			writeTree(t, src, tree)
			var dst, bucket string
			switch tc.dst {
			case "file":
				dst = "file://" + filepath.Join(base, "dst")
			case "s3":
				bucket = s3srv.NewBucket(t)
				dst = "s3://" + bucket + "/out"
			case "gcs":
				bucket = gcsSrv.NewBucket()
				dst = "gs://" + bucket + "/out"
			}
			env := []string{envChild + "=1", envTemporal + "=" + cl.Frontend, envNamespace + "=" + cl.Namespace,
				envManifests + "=" + cl.ManifestRoot, envS3 + "=" + s3srv.URL, envGCS + "=" + gcsSrv.URL}
			victim := startCrashNode(t, append(env, "FERRY_CRASHPOINT="+tc.step))
			key := jobs.Key{Type: tc.typ, Path: "file://" + src, Dst: dst}
			opts, err := jobs.ParseOptions(key.Type, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
				t.Fatal(err)
			}
			victim.waitKilled(t, 2*time.Minute)
			// The kill left the state of its step behind.
			switch tc.step {
			case "local.linked":
				if len(partials(t, filepath.Join(base, "dst"))) == 0 {
					t.Fatalf("no partial file beside the linked destination after the kill at %s", tc.step)
				}
			case "s3.parts":
				if len(s3srv.Uploads(t, bucket)) == 0 {
					t.Fatalf("no incomplete upload after the kill at %s", tc.step)
				}
			}
			startCrashNode(t, env)
			st := cl.WaitEnd(key, jobTimeout)
			check(t, st, want{status: workflows.StatusSucceeded, succeeded: int64(len(tree)), bytes: total})
			if tc.typ == workflows.JobMove {
				sameFiles(t, "source after the move", readTree(t, src), nil)
			} else {
				sameFiles(t, "source after the copy", readTree(t, src), tree)
			}
			switch tc.dst {
			case "file":
				sameFiles(t, "destination", readTree(t, filepath.Join(base, "dst")), tree)
				if p := partials(t, filepath.Join(base, "dst")); len(p) > 0 {
					t.Fatalf("partial files survived the job: %q", p)
				}
			case "s3":
				sameFiles(t, "destination", readStore(t, s3st, dst, s3srv.Keys(t, bucket)), tree)
				if u := s3srv.Uploads(t, bucket); len(u) > 0 {
					t.Fatalf("incomplete multipart uploads survived the job: %q", u)
				}
			case "gcs":
				sameFiles(t, "destination", readStore(t, gcsSt, dst, gcsSrv.Names(t, bucket)), tree)
			}
		})
	}
}

// crashNodeProc is a node process of TestCrashAtEveryCommitStep.
type crashNodeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startCrashNode starts this test binary as the crash node and waits until
// it serves its task queue. It is killed when the test ends.
func startCrashNode(t *testing.T, env []string) *crashNodeProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashNodeProcess$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &crashNodeProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && sc.Text() == childReady {
				seen = true
				ready <- true
			}
		}
		if !seen {
			ready <- false
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-p.done
	})
	if ok := <-ready; !ok {
		<-p.done
		t.Fatalf("the crash node did not start: %v\n%s", p.err, stderr.String())
	}
	return p
}

// waitKilled waits until the process has died of SIGKILL.
func (p *crashNodeProc) waitKilled(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("the crash node did not reach its crash point within %v", timeout)
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		t.Fatalf("the crash node ended with %v, not killed", p.err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the crash node ended with %v, not SIGKILL", p.err)
	}
}

// partials lists the partial files under dir.
func partials(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), local.PartialMarker) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// readStore reads the objects with the given keys under the prefix of uri
// (relative name → content).
func readStore(t *testing.T, st storage.Store, uri string, keys []string) map[string]string {
	t.Helper()
	u, err := storage.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimPrefix(u.Path, "/") + "/"
	out := map[string]string{}
	sort.Strings(keys)
	for _, k := range keys {
		rel, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		r, err := st.Open(context.Background(), storage.JoinKey(uri, rel), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = string(b)
	}
	return out
}
