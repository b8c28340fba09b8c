package temporaldev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// SearchAttributes are the custom search attributes Ferry sets on every job
// workflow. They are registered in the namespace at start.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	"FerryJobType":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"FerryJobPath":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"FerryJobState": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"FerryPolicy":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	// FerryJobProgress is the job's progress line, for a column of the
	// UI's workflow list.
	"FerryJobProgress": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Config describes one embedded server. The zero value is an in-memory server
// on a free loopback port with no UI.
type Config struct {
	// DatabaseFile is the SQLite file that holds all state. Empty means an
	// in-memory database that is lost when the server stops.
	DatabaseFile string
	// Namespace is created at start. Default "default".
	Namespace string
	// FrontendAddress is where the frontend gRPC service listens, host:port.
	// Default "127.0.0.1:0" (a free port).
	FrontendAddress string
	// UIAddress, when set, starts the Temporal Web UI there (host:port, port 0
	// picks a free one). Empty means no UI.
	UIAddress string
	// LogFile receives the server's own log. Empty discards it.
	LogFile string
	// LogLevel of the server's own log: debug, info, warn or error. Default info.
	LogLevel string
}

// Server is a running embedded Temporal server.
type Server struct {
	cfg      Config
	frontend string
	server   temporal.Server
	ui       *uiServer
	lock     *os.File
	stopped  atomic.Bool
}

// Start creates the database if needed, starts every Temporal service and the
// UI, waits until the frontend answers health checks and the namespace and
// search attributes are in place, and returns. It returns an error, never
// panics, when a port is taken or the database cannot be opened.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.FrontendAddress == "" {
		cfg.FrontendAddress = "127.0.0.1:0"
	}
	host, frontendPort, err := resolvePort(cfg.FrontendAddress)
	if err != nil {
		return nil, fmt.Errorf("temporal frontend address %q: %w", cfg.FrontendAddress, err)
	}
	_, requested, _ := net.SplitHostPort(cfg.FrontendAddress)
	frontendChosen := requested == "0"

	var lock *os.File
	if cfg.DatabaseFile != "" {
		if lock, err = lockDatabase(cfg.DatabaseFile); err != nil {
			return nil, err
		}
	}
	started := false
	defer func() {
		if !started && lock != nil {
			_ = lock.Close()
		}
	}()
	sqlCfg, err := prepareDatabase(cfg)
	if err != nil {
		return nil, err
	}

	// The internal ports (and the frontend port when the caller asked for
	// any free one) are chosen by asking the kernel for free ones and
	// releasing them; another process may take one before the server binds
	// it. Temporal then logs Fatal, which panicOnFatal turns into a panic
	// that startServer recovers. Try again with fresh ports a few times.
	var (
		srv      temporal.Server
		frontend string
	)
	for attempt := 1; ; attempt++ {
		frontend = net.JoinHostPort(host, strconv.Itoa(frontendPort))
		srv, err = startServer(cfg, host, frontendPort, frontend, sqlCfg)
		if err == nil {
			break
		}
		if attempt == 3 {
			return nil, err
		}
		if frontendChosen {
			if _, frontendPort, err = resolvePort(net.JoinHostPort(host, "0")); err != nil {
				return nil, err
			}
		} else if !cfgPortFree(cfg, host, frontendPort) {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, frontend: frontend, server: srv, lock: lock}
	started = true
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if cfg.UIAddress != "" {
		ui, err := startUI(cfg.UIAddress, frontend, cfg.Namespace)
		if err != nil {
			_ = s.Stop()
			return nil, err
		}
		s.ui = ui
	}
	return s, nil
}

const clusterName = "active"

// startServer configures and starts the Temporal services once.
func startServer(cfg Config, host string, frontendPort int, frontend string, sqlCfg *config.SQL) (srv temporal.Server, err error) {
	defer func() {
		if p := recover(); p != nil {
			srv, err = nil, fmt.Errorf("start temporal server: %v", p)
		}
	}()
	ports, err := freePorts(host, 7) // 3 other gRPC ports + 4 membership ports
	if err != nil {
		return nil, err
	}
	service := func(grpcPort, membershipPort int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpcPort, MembershipPort: membershipPort, BindOnIP: host}}
	}
	serverCfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: host},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": service(frontendPort, ports[3]),
			"history":  service(ports[0], ports[4]),
			"matching": service(ports[1], ports[5]),
			"worker":   service(ports[2], ports[6]),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}

	dynamic := dynamicconfig.StaticClient{
		// New search attributes are usable at once, not after a cache refresh.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		// An activity on the workflow's own task queue starts in the worker
		// that scheduled it, without a round through matching.
		dynamicconfig.EnableActivityEagerExecution.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		// The single history shard reads its task queues at most this often
		// per second. At the default (20) every step of a workflow waited
		// up to 50 ms for its transfer task to be read: 82 ms per step
		// before, 9.4 ms with this (BenchmarkActivityChain).
		dynamicconfig.TransferProcessorMaxPollRPS.Key():   []dynamicconfig.ConstrainedValue{{Value: 1000}},
		dynamicconfig.TimerProcessorMaxPollRPS.Key():      []dynamicconfig.ConstrainedValue{{Value: 1000}},
		dynamicconfig.VisibilityProcessorMaxPollRPS.Key(): []dynamicconfig.ConstrainedValue{{Value: 1000}},
	}
	srv, err = temporal.NewServer(
		temporal.WithConfig(serverCfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(panicOnFatal{newLogger(cfg)}),
		temporal.WithDynamicConfigClient(dynamic),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	return srv, nil
}

// cfgPortFree reports whether retrying can help: the frontend port itself
// is still free (a taken frontend port is the user's to fix).
func cfgPortFree(cfg Config, host string, port int) bool {
	return checkFree(host, port) == nil
}

// FrontendAddress is the host:port clients dial.
func (s *Server) FrontendAddress() string { return s.frontend }

// Namespace is the namespace created at start.
func (s *Server) Namespace() string { return s.cfg.Namespace }

// UIURL is the Web UI's base URL, or "" when the UI is off.
func (s *Server) UIURL() string {
	if s.ui == nil {
		return ""
	}
	return "http://" + s.ui.addr
}

// Stop stops the UI and every Temporal service. It is safe to call twice.
func (s *Server) Stop() error {
	if !s.stopped.CompareAndSwap(false, true) {
		return nil
	}
	if s.ui != nil {
		s.ui.stop()
	}
	err := s.server.Stop()
	if s.lock != nil {
		_ = s.lock.Close()
	}
	return err
}

// lockDatabase takes an exclusive lock beside the database file, so that two
// servers never share one file. The kernel drops it if the process dies.
func lockDatabase(file string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("temporal database directory: %w", err)
	}
	f, err := os.OpenFile(file+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("temporal database lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("temporal database %s is in use by another process (another ferry dev on the same --data-dir?)", file)
	}
	return f, nil
}

// prepareDatabase builds the SQLite store configuration and, in file mode,
// creates the schema when the file does not exist yet. The namespace is
// created (with Ferry's search attributes) when missing.
func prepareDatabase(cfg Config) (*config.SQL, error) {
	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
	}
	if cfg.DatabaseFile == "" {
		sqlCfg.DatabaseName = "ferry-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
	} else {
		sqlCfg.DatabaseName = cfg.DatabaseFile
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		// Keys that are not SQLite URI parameters become pragmas, by their
		// plain names (an unknown pragma such as "_journal_mode" is silently
		// ignored). WAL keeps readers (the UI, visibility) from blocking the
		// writer; with synchronous=normal a commit appends to the WAL without
		// an fsync: a killed process loses nothing, a power cut may lose the
		// last commits but never corrupts the file.
		sqlCfg.ConnectAttributes["journal_mode"] = "wal"
		sqlCfg.ConnectAttributes["synchronous"] = "normal"
		if _, err := os.Stat(cfg.DatabaseFile); errors.Is(err, os.ErrNotExist) {
			if err := sqlite.SetupSchema(sqlCfg); err != nil {
				_ = os.Remove(cfg.DatabaseFile)
				return nil, fmt.Errorf("create temporal schema in %s: %w", cfg.DatabaseFile, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("temporal database %s: %w", cfg.DatabaseFile, err)
		} else if err := pruneMembership(sqlCfg); err != nil {
			return nil, fmt.Errorf("temporal database %s: %w", cfg.DatabaseFile, err)
		}
	}
	// (An in-memory database gets its schema from the SQLite plugin itself.)
	ns, err := sqlite.NewNamespaceConfig(clusterName, cfg.Namespace, false, SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", cfg.Namespace, err)
	}
	if err := sqlite.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("create namespace %q: %w", cfg.Namespace, err)
	}
	return sqlCfg, nil
}

// pruneMembership forgets the service hosts a previous run recorded. They
// listened on ports chosen for that run and are gone; left in place, the new
// services would try to join them and wait out their join timeout.
func pruneMembership(sqlCfg *config.SQL) error {
	db, err := sql.NewSQLDB(sqlplugin.DbKindMain, sqlCfg, resolver.NewNoopResolver(), tlog.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	_, err = db.PruneClusterMembership(context.Background(), &sqlplugin.PruneClusterMembershipFilter{
		PruneRecordsBefore: time.Now().Add(100 * 365 * 24 * time.Hour),
	})
	return err
}

// waitReady blocks until the frontend answers and every search attribute of
// SearchAttributes exists in the namespace (adding those an older database
// lacks).
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := dialWithRetry(ctx, s.frontend, s.cfg.Namespace)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		err := ensureSearchAttributes(ctx, c.OperatorService(), s.cfg.Namespace)
		if err == nil {
			// The frontend answers before the matching service has joined
			// the membership ring; a task-queue call goes through matching.
			_, err = c.DescribeTaskQueue(ctx, "ferry-readiness", enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal server did not become ready: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func dialWithRetry(ctx context.Context, frontend, namespace string) (client.Client, error) {
	for {
		c, err := client.DialContext(ctx, client.Options{HostPort: frontend, Namespace: namespace, Logger: quietLogger{}})
		if err == nil {
			if _, err = c.CheckHealth(ctx, &client.CheckHealthRequest{}); err == nil {
				return c, nil
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("temporal frontend %s did not answer: %w", frontend, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ensureSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, namespace string) error {
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return err
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	if err != nil {
		return err
	}
	return errors.New("search attributes added; checking again")
}

func newLogger(cfg Config) tlog.Logger {
	if cfg.LogFile == "" {
		return tlog.NewNoopLogger()
	}
	level := cfg.LogLevel
	if level == "" {
		level = "info"
	}
	return tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: level, OutputFile: cfg.LogFile}))
}

// panicOnFatal turns the server's Fatal log lines into panics. Temporal
// logs Fatal when a service cannot bind its port: the no-op logger would
// carry on with a nil listener that crashes later in a goroutine nobody can
// recover, and zap would exit the process. A panic on the goroutine that is
// building the server is recovered by startServer, which retries.
type panicOnFatal struct{ tlog.Logger }

// Fatal logs msg as an error and panics with it.
func (l panicOnFatal) Fatal(msg string, tags ...tag.Tag) {
	l.Error(msg, tags...)
	panic(fatalLog{msg: msg, tags: tags})
}

// fatalLog is the panic value of panicOnFatal.
type fatalLog struct {
	msg  string
	tags []tag.Tag
}

func (f fatalLog) String() string {
	var b strings.Builder
	b.WriteString(f.msg)
	for _, t := range f.tags {
		fmt.Fprintf(&b, " %s=%v", t.Key(), t.Value())
	}
	return b.String()
}

// resolvePort splits host:port and, for port 0, picks a free port on host.
func resolvePort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", portStr)
	}
	if port != 0 {
		if err := checkFree(host, port); err != nil {
			return "", 0, err
		}
		return host, port, nil
	}
	ports, err := freePorts(host, 1)
	if err != nil {
		return "", 0, err
	}
	return host, ports[0], nil
}

func checkFree(host string, port int) error {
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is not free (is another Temporal or ferry dev running?): %w", port, host, err)
	}
	return l.Close()
}

// freePorts asks the kernel for n distinct free ports on host. The listeners
// are held until all n are chosen so the same port is not returned twice.
func freePorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// quietLogger drops the SDK client's own log lines during start-up polling.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
