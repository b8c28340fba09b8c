package truth

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
	"github.com/ferryio/ferry/workflows"
)

// TestTemporalUIInBrowser is issue 12's headless-browser check: Chromium,
// driven over the DevTools protocol (the UI is a single-page application
// that long-polls, so the page is read as it renders, not fetched once),
// shows a running job's progress text on its page of the Temporal Web UI
// (the run's current details), and the job, RUNNING, with its progress
// (FerryJobProgress) in the workflow list. With FERRY_UI_SHOT set to a
// directory it leaves list.png and job.png there. It needs `chromium` on
// PATH (Debian: apt-get install chromium); CI has only Go, so it skips
// without it.
func TestTemporalUIInBrowser(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium on PATH: the headless-browser check of the Temporal UI needs it (Debian: apt-get install chromium)")
	}
	cl := enginetest.NewClusterConfig(t, temporaldev.Config{UIAddress: "127.0.0.1:0"}, 0)
	f := useFaults(t, cl)
	src, _ := enginetest.MakeTree(t, 6)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	g := f.add(src, func(kind, uri string, _ int) bool { return kind == "load" && inDir(uri, 0) }, nil)
	submit(t, cl, key, map[string]any{"batchSize": "2"})
	waitFor(t, cl, key, "five files done", func(s workflows.JobState) bool { return s.Succeeded == 5 && f.heldReads(g) == 1 })

	// The job's FerryJobProgress search attribute follows within a
	// liveness period or two (it changes at most every 10 s).
	ferrytest.Eventually(t, 60*time.Second, func() error {
		d, err := cl.Client.DescribeWorkflowExecution(context.Background(), key.WorkflowID(), "")
		if err != nil {
			return err
		}
		var v string
		if p := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrJobProgress]; p != nil {
			_ = json.Unmarshal(p.GetData(), &v)
		}
		if !strings.Contains(v, "RUNNING: 5 of 6 files") {
			return fmt.Errorf("FerryJobProgress is %q", v)
		}
		return nil
	})

	b := startBrowser(t, bin)
	shots := os.Getenv("FERRY_UI_SHOT")
	// The list's columns: Temporal's own and the job's progress, as a user
	// sets them once in the UI ("Configure columns", README); the UI keeps
	// them in the browser's local storage.
	b.open(t, cl.UIURL, "", "", "", "")
	columns := map[string]any{cl.Namespace: []map[string]string{
		{"label": "Status"}, {"label": "Workflow ID"}, {"label": "FerryJobProgress"}, {"label": "Type"}, {"label": "Start"}, {"label": "End"},
	}}
	cj, _ := json.Marshal(columns)
	if err := b.call("Runtime.evaluate", map[string]any{"expression": fmt.Sprintf("localStorage.setItem('namespace-workflow-table-columns', %q)", cj)}, nil); err != nil {
		t.Fatal(err)
	}
	list := fmt.Sprintf("%s/namespaces/%s/workflows?query=%s", cl.UIURL, cl.Namespace, url.QueryEscape("FerryJobType IS NOT NULL"))
	// The list shows the job, its Temporal status and its progress.
	b.open(t, list, "", "RUNNING "+key.WorkflowID(), "", "")
	b.open(t, list, "", "RUNNING: 5 of 6 files", shots, "list.png")
	page := fmt.Sprintf("%s/namespaces/%s/workflows/%s", cl.UIURL, cl.Namespace, url.PathEscape(key.WorkflowID()))
	// The page's "User Metadata" tab holds the summary, the details and the
	// current details.
	b.open(t, page, "User Metadata", "RUNNING: 5 of 6 files", shots, "job.png")
	b.open(t, page, "User Metadata", "load "+src, "", "")
	f.open(g)
	cl.WaitEnd(key, jobTimeout)
}

// browser is a headless Chromium and a DevTools connection to its page.
type browser struct {
	ws   *websocket.Conn
	next atomic.Int64
}

func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir="+t.TempDir(),
		"--window-size=1400,900", "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Chromium's helper processes (renderer, network service) write to the
	// profile directory too: they run in the browser's process group, which
	// is killed whole, so none is still writing when the directory goes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	// "DevTools listening on ws://127.0.0.1:<port>/devtools/browser/<id>"
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`ws://([^/]+)/devtools/browser/`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		for sc.Scan() { // drain, so Chromium never blocks on its stderr
		}
	}()
	var host string
	select {
	case host = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not print its DevTools address within 60 s")
	}
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	ferrytest.Eventually(t, 30*time.Second, func() error {
		res, err := http.Get("http://" + host + "/json/list")
		if err != nil {
			return err
		}
		defer func() { _ = res.Body.Close() }()
		if err := json.NewDecoder(res.Body).Decode(&targets); err != nil {
			return err
		}
		for _, tg := range targets {
			if tg.Type == "page" {
				return nil
			}
		}
		return fmt.Errorf("no page among %d targets", len(targets))
	})
	for _, tg := range targets {
		if tg.Type != "page" {
			continue
		}
		ws, err := websocket.Dial(tg.WS, "", "http://"+host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return &browser{ws: ws}
	}
	t.Fatal("no page target")
	return nil
}

// call sends one DevTools command and returns its result; events that
// arrive meanwhile are dropped.
func (b *browser) call(method string, params map[string]any, result any) error {
	id := b.next.Add(1)
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return err
	}
	_ = b.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int64           `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := websocket.JSON.Receive(b.ws, &msg); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			return fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, result)
	}
}

// open navigates to u, clicks the tab whose label starts with tab (if
// any), waits until the rendered page's text (its
// whitespace runs read as one space) holds want,
// and saves a screenshot as dir/name when dir is set.
func (b *browser) open(t *testing.T, u, tab, want, dir, name string) {
	t.Helper()
	if err := b.call("Page.navigate", map[string]any{"url": u}, nil); err != nil {
		t.Fatal(err)
	}
	var text string
	ferrytest.Eventually(t, 60*time.Second, func() error {
		var res struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		if tab != "" {
			// Click the tab once it has rendered (until the text shows).
			js := fmt.Sprintf(`(() => { const e = [...document.querySelectorAll('a,button,[role=tab]')].find(e => e.innerText && e.innerText.trim().startsWith(%q)); if (e) e.click(); })()`, tab)
			if err := b.call("Runtime.evaluate", map[string]any{"expression": js}, nil); err != nil {
				return err
			}
		}
		// The UI renders user metadata (Markdown) in sandboxed frames:
		// their text counts too.
		const read = `(document.body ? document.body.innerText : '') + ' ' + [...document.querySelectorAll('iframe')].map(f => { try { return f.contentDocument.body.innerText } catch (e) { return f.srcdoc || '' } }).join(' ')`
		if err := b.call("Runtime.evaluate", map[string]any{"expression": read, "returnByValue": true}, &res); err != nil {
			return err
		}
		// Cells and lines read as single spaces.
		text = strings.Join(strings.Fields(res.Result.Value), " ")
		if !strings.Contains(text, want) {
			return fmt.Errorf("%s does not show %q yet; it shows:\n%.2000s", u, want, text)
		}
		return nil
	})
	t.Logf("%s shows %q", u, want)
	if dir == "" {
		return
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := b.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	p := dir + "/" + name
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}
