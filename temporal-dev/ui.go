package temporaldev

import (
	"fmt"
	"net"
	"strconv"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// uiServer is the Temporal Web UI, served by the ui-server module's echo
// server with its embedded assets.
type uiServer struct {
	addr   string
	server *uiserver.Server
	done   chan struct{}
}

type staticUIConfig struct{ cfg *uiconfig.Config }

func (p staticUIConfig) GetConfig() (*uiconfig.Config, error) { return p.cfg, nil }

// startUI starts the UI on addr for the frontend at temporalAddr. The UI
// server's own Start exits the process when it cannot listen, so the port is
// checked first and an error returned instead.
func startUI(addr, temporalAddr, namespace string) (*uiServer, error) {
	host, port, err := resolvePort(addr)
	if err != nil {
		return nil, fmt.Errorf("temporal UI address %q: %w", addr, err)
	}
	cfg := &uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: temporalAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		HideLogs:            true,
		DisableNewsFetch:    true,
		NotifyOnNewVersion:  false,
		CORS:                uiconfig.CORS{CookieInsecure: true},
	}
	srv := uiserver.NewServer(server_options.WithConfigProvider(staticUIConfig{cfg}))
	u := &uiServer{addr: net.JoinHostPort(host, strconv.Itoa(port)), server: srv, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		_ = srv.Start()
	}()
	return u, nil
}

func (u *uiServer) stop() {
	u.server.Stop()
	<-u.done
}
