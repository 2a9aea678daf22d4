package rmw_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	rmw "github.com/remotemedia/remotemedia-webrtc/bindings/go"
)

func startServer(t *testing.T) *rmw.SignalingServer {
	t.Helper()
	srv, err := rmw.StartSignalingServer("127.0.0.1:0")
	if err != nil {
		t.Fatalf("StartSignalingServer: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if !strings.HasPrefix(srv.URL(), "ws://127.0.0.1:") || srv.Port() == 0 {
		t.Fatalf("server URL %q port %d", srv.URL(), srv.Port())
	}
	return srv
}

func newTransport(t *testing.T, srv *rmw.SignalingServer, id string) *rmw.Transport {
	t.Helper()
	tr, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), PeerID: id, ICEPolicy: "loopback"})
	if err != nil {
		t.Fatalf("NewTransport(%s): %v", id, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// waitFor reads events of tr until match returns true; error events and failed peers fail
// the test. Events not matched are handed to seen (may be nil).
func waitFor(ctx context.Context, t *testing.T, tr *rmw.Transport, what string, match func(rmw.Event) bool) rmw.Event {
	t.Helper()
	for {
		ev, err := tr.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		t.Logf("%s", ev)
		if ev.Kind == rmw.EventError {
			t.Fatalf("waiting for %s: error event: %s", what, ev.Message)
		}
		if ev.Kind == rmw.EventPeerStateChanged && ev.PeerState == rmw.PeerFailed {
			t.Fatalf("waiting for %s: connection to %s failed", what, ev.PeerID)
		}
		if match(ev) {
			return ev
		}
	}
}

func TestVersion(t *testing.T) {
	if rmw.Version() == "" {
		t.Fatal("empty version")
	}
	if rmw.ABIVersion() != rmw.HeaderABIVersion {
		t.Fatalf("library ABI %d, header ABI %d", rmw.ABIVersion(), rmw.HeaderABIVersion)
	}
	if s := rmw.StatusNotFound.String(); s != "RMW_ERR_NOT_FOUND" {
		t.Fatalf("StatusNotFound.String() = %q", s)
	}
}

func TestTwoPeersExchangeMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	bob := newTransport(t, srv, "bob")

	if id, err := alice.PeerID(); err != nil || id != "alice" {
		t.Fatalf("PeerID = %q, %v", id, err)
	}
	waitFor(ctx, t, alice, "alice to discover bob", func(e rmw.Event) bool {
		return e.Kind == rmw.EventPeerDiscovered && e.PeerID == "bob"
	})
	if err := alice.ConnectPeer(ctx, "bob"); err != nil {
		t.Fatalf("ConnectPeer: %v", err)
	}
	isOpen := func(peer string) func(rmw.Event) bool {
		return func(e rmw.Event) bool {
			return e.Kind == rmw.EventDataChannelOpen && e.PeerID == peer && e.Label == "data"
		}
	}
	waitFor(ctx, t, alice, "alice's channel to open", isOpen("bob"))
	waitFor(ctx, t, bob, "bob's channel to open", isOpen("alice"))

	peers, err := alice.Peers()
	if err != nil || len(peers) != 1 || peers[0].PeerID != "bob" {
		t.Fatalf("Peers = %+v, %v", peers, err)
	}
	if st, err := alice.PeerState("bob"); err != nil || st != rmw.PeerConnected {
		t.Fatalf("PeerState = %v, %v", st, err)
	}

	bin := []byte{0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x7f, 0x80}
	mustSend := func(from *rmw.Transport, to string, data []byte, binary bool) {
		t.Helper()
		n, err := from.SendData(to, data, binary)
		if err != nil || n != 1 {
			t.Fatalf("SendData(%s) = %d, %v", to, n, err)
		}
	}
	mustSend(alice, "bob", []byte("hello bob"), false)
	mustSend(alice, "bob", bin, true)
	mustSend(bob, "alice", []byte("hello alice"), false)
	mustSend(bob, "", bin, true) // "" = every connected peer

	isMsg := func(e rmw.Event) bool { return e.Kind == rmw.EventDataChannelMessage }
	for _, c := range []struct {
		tr     *rmw.Transport
		from   string
		text   string
		binary []byte
	}{{bob, "alice", "hello bob", bin}, {alice, "bob", "hello alice", bin}} {
		ev := waitFor(ctx, t, c.tr, "text from "+c.from, isMsg)
		if ev.Binary || ev.Text() != c.text || ev.PeerID != c.from {
			t.Fatalf("got %v, want text %q from %s", ev, c.text, c.from)
		}
		ev = waitFor(ctx, t, c.tr, "binary from "+c.from, isMsg)
		if !ev.Binary || !bytes.Equal(ev.Data, c.binary) {
			t.Fatalf("got %v, want binary %x", ev, c.binary)
		}
	}

	// Sessions.
	if err := alice.CreateSession("room"); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := alice.CreateSession("room"); !errors.Is(err, rmw.ErrAlreadyExists) {
		t.Fatalf("CreateSession twice: %v, want ErrAlreadyExists", err)
	}
	if err := alice.AddSessionPeer("room", "bob"); err != nil {
		t.Fatalf("AddSessionPeer: %v", err)
	}
	if s, err := alice.Session("room"); err != nil || s.SessionID != "room" || len(s.Peers) != 1 || s.Peers[0] != "bob" {
		t.Fatalf("Session = %+v, %v", s, err)
	}
	if list, err := alice.Sessions(); err != nil || len(list) != 1 {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
	if n, err := alice.SendToSession("room", []byte("to the room"), false); err != nil || n != 1 {
		t.Fatalf("SendToSession = %d, %v", n, err)
	}
	if ev := waitFor(ctx, t, bob, "session message", isMsg); ev.Text() != "to the room" {
		t.Fatalf("got %v", ev)
	}
	if _, err := alice.SendToSession("nope", []byte("x"), false); !errors.Is(err, rmw.ErrNotFound) {
		t.Fatalf("SendToSession(unknown): %v, want ErrNotFound", err)
	}
	if err := alice.RemoveSession("room"); err != nil {
		t.Fatalf("RemoveSession: %v", err)
	}

	// An extra data channel, with the Events channel on bob's side.
	ch, err := alice.CreateDataChannel("bob", "extra", nil)
	if err != nil {
		t.Fatalf("CreateDataChannel: %v", err)
	}
	waitFor(ctx, t, alice, "extra channel open", func(e rmw.Event) bool {
		return e.Kind == rmw.EventDataChannelOpen && e.Channel != nil && e.Channel.ID() == ch.ID()
	})
	if l, err := ch.Label(); err != nil || l != "extra" {
		t.Fatalf("Label = %q, %v", l, err)
	}
	if err := ch.Send([]byte("on extra"), false); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := ch.BufferedAmount(); err != nil {
		t.Fatalf("BufferedAmount: %v", err)
	}
	events := bob.Events()
	var bobCh *rmw.DataChannel
	for bobCh == nil {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("bob's event channel closed")
			}
			t.Logf("bob (Events): %s", ev)
			if ev.Kind == rmw.EventDataChannelMessage && ev.Label == "extra" {
				if ev.Text() != "on extra" {
					t.Fatalf("got %v", ev)
				}
				bobCh = ev.Channel
			}
		case <-ctx.Done():
			t.Fatal("timed out waiting for the message on the extra channel")
		}
	}
	if err := bobCh.SendText("reply on extra"); err != nil {
		t.Fatalf("bob SendText on extra: %v", err)
	}
	if ev := waitFor(ctx, t, alice, "reply on extra", isMsg); ev.Text() != "reply on extra" || ev.Channel == nil || ev.Channel.ID() != ch.ID() {
		t.Fatalf("got %v", ev)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("DataChannel.Close: %v", err)
	}

	if err := alice.DisconnectPeer("bob"); err != nil {
		t.Fatalf("DisconnectPeer: %v", err)
	}
	if err := bob.Close(); err != nil {
		t.Fatalf("bob.Close: %v", err)
	}
	// The Events channel is closed by Close.
	for range events {
	}
	if err := bobCh.SendText("x"); !errors.Is(err, rmw.ErrClosed) && !errors.Is(err, rmw.ErrInvalidHandle) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestConnectUnknownPeerIsNotFound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	waitFor(ctx, t, alice, "signaling connected", func(e rmw.Event) bool {
		return e.Kind == rmw.EventSignalingConnected
	})
	err := alice.ConnectPeer(ctx, "nobody")
	if !errors.Is(err, rmw.ErrNotFound) {
		t.Fatalf("ConnectPeer(nobody) = %v, want ErrNotFound", err)
	}
	var e *rmw.Error
	if !errors.As(err, &e) || e.Status != rmw.StatusNotFound || e.Message == "" {
		t.Fatalf("error %#v: want *rmw.Error with status and message", err)
	}
	if errors.Is(err, rmw.ErrTimeout) {
		t.Fatal("ErrNotFound must not match ErrTimeout")
	}
	if _, err := alice.PeerState("nobody"); !errors.Is(err, rmw.ErrNotFound) {
		t.Fatalf("PeerState(nobody) = %v, want ErrNotFound", err)
	}
	if _, err := rmw.NewTransport(rmw.Config{ICEPolicy: "bogus"}); !errors.Is(err, rmw.ErrConfig) {
		t.Fatalf("NewTransport(bad config) = %v, want ErrConfig", err)
	}
	if _, err := alice.SendData("a\x00b", []byte("x"), false); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Fatalf("SendData(NUL in id) = %v, want ErrInvalidArgument", err)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	srv := startServer(t)
	tr := newTransport(t, srv, "")
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := tr.PeerID(); !errors.Is(err, rmw.ErrClosed) {
		t.Fatalf("PeerID after Close = %v, want ErrClosed", err)
	}
	if _, err := tr.Next(context.Background()); !errors.Is(err, rmw.ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
	if _, ok := <-tr.Events(); ok {
		t.Fatal("Events after Close: channel not closed")
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestCloseWhileNextBlocked(t *testing.T) {
	srv := startServer(t)
	tr := newTransport(t, srv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Drain what comes at start, so that Next really blocks.
	waitFor(ctx, t, tr, "signaling connected", func(e rmw.Event) bool {
		return e.Kind == rmw.EventSignalingConnected
	})
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := tr.Next(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, rmw.ErrClosed) && !errors.Is(err, rmw.ErrInvalidHandle) {
			t.Fatalf("Next returned %v, want ErrClosed or ErrInvalidHandle", err)
		}
		t.Logf("Next returned %v %v after Close", err, time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Next still blocked 2 s after Close")
	}
}

func TestNextHonoursContext(t *testing.T) {
	srv := startServer(t)
	tr := newTransport(t, srv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitFor(ctx, t, tr, "signaling connected", func(e rmw.Event) bool {
		return e.Kind == rmw.EventSignalingConnected
	})
	short, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err := tr.Next(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Next returned after %v", d)
	}
}

func readVmRSSKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS line")
	return 0
}

func threadCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("no /proc/self/task: %v", err)
	}
	return len(ents)
}

func TestCreateCloseManyTransportsNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := startServer(t)
	cycle := func(n int) {
		for i := 0; i < n; i++ {
			tr, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), ICEPolicy: "loopback"})
			if err != nil {
				t.Fatalf("NewTransport #%d: %v", i, err)
			}
			if err := tr.Close(); err != nil {
				t.Fatalf("Close #%d: %v", i, err)
			}
		}
	}
	settle := func() {
		for i := 0; i < 3; i++ {
			runtime.GC()
			time.Sleep(50 * time.Millisecond)
		}
	}
	cycle(100) // warm-up
	settle()
	rss0, threads0 := readVmRSSKB(t), threadCount(t)
	start := time.Now()
	cycle(1000)
	settle()
	// Threads of closed transports are joined by Close; allow a few for the Go runtime.
	var rss1, threads1 int
	for i := 0; i < 20; i++ {
		rss1, threads1 = readVmRSSKB(t), threadCount(t)
		if threads1 <= threads0+4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("1000 create/close cycles in %v: VmRSS %d kB -> %d kB (%+d kB), threads %d -> %d",
		time.Since(start), rss0, rss1, rss1-rss0, threads0, threads1)
	if rss1-rss0 > 20*1024 {
		t.Errorf("VmRSS grew by %d kB over 1000 cycles", rss1-rss0)
	}
	if threads1 > threads0+4 {
		t.Errorf("threads: %d before, %d after", threads0, threads1)
	}
}

func TestFinalizerClosesTransport(t *testing.T) {
	srv := startServer(t)
	runtime.GC()
	before := threadCount(t)
	var during int
	func() {
		var keep []*rmw.Transport
		for i := 0; i < 20; i++ {
			tr, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), ICEPolicy: "loopback"})
			if err != nil {
				t.Fatalf("NewTransport: %v", err)
			}
			keep = append(keep, tr)
		}
		during = threadCount(t)
		runtime.KeepAlive(keep)
	}() // never closed: left to the finalizers
	var after int
	for i := 0; i < 50; i++ {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		if after = threadCount(t); after <= before+4 {
			break
		}
	}
	t.Logf("threads: %d before, %d with 20 open transports, %d after the finalizers", before, during, after)
	if during <= before+4 {
		t.Skipf("transports start no threads of their own (%d -> %d): nothing to observe", before, during)
	}
	if after > before+4 {
		t.Errorf("threads %d before, %d after: finalizers did not close the transports", before, after)
	}
}
