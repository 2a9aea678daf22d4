package rmw_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	rmw "github.com/remotemedia/remotemedia-webrtc/bindings/go"
)

// pattern returns frame n of a moving test pattern as tight I420: a vertical luma gradient, a
// white bar 16 px wide moving 8 px per frame, colour ramps in the chroma planes, and n as 16
// black (0) / white (1) 16x16 blocks along the top (rows 16..31, bit b at x = 32 + 16 b).
func pattern(w, h, n int) rmw.RawVideoFrame {
	f := rmw.NewI420Frame(w, h)
	y, u, v := f.Planes[0], f.Planes[1], f.Planes[2]
	bar := (8 * n) % w
	for r := 0; r < h; r++ {
		for c := 0; c < w; c++ {
			val := byte(40 + r*120/h)
			if c >= bar && c < bar+16 {
				val = 235
			}
			y[r*w+c] = val
		}
	}
	for bit := 0; bit < 16; bit++ {
		x0 := 32 + 16*bit
		val := byte(16)
		if (n>>bit)&1 == 1 {
			val = 235
		}
		for r := 16; r < 32; r++ {
			for c := x0; c < x0+16 && c < w; c++ {
				y[r*w+c] = val
			}
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	for r := 0; r < ch; r++ {
		for c := 0; c < cw; c++ {
			u[r*cw+c] = byte(90 + c*80/cw)
			v[r*cw+c] = byte(90 + r*80/ch)
		}
	}
	return f
}

// frameNumber reads the number a received luma plane carries (-1 if a block is unreadable):
// the mean of the 8x8 centre of each block.
func frameNumber(y []byte, stride int) int {
	n := 0
	for bit := 0; bit < 16; bit++ {
		x0 := 32 + 16*bit
		sum := 0
		for r := 20; r < 28; r++ {
			for c := x0 + 4; c < x0+12; c++ {
				sum += int(y[r*stride+c])
			}
		}
		switch mean := sum / 64; {
		case mean < 80:
		case mean > 170:
			n |= 1 << bit
		default:
			return -1
		}
	}
	return n
}

// lumaPSNR is the PSNR (dB) of a received frame's Y plane against the Y plane sent.
func lumaPSNR(got rmw.VideoFrame, sent rmw.RawVideoFrame) float64 {
	var sse float64
	for r := 0; r < sent.Height; r++ {
		for c := 0; c < sent.Width; c++ {
			d := float64(got.Planes[0][r*got.Strides[0]+c]) - float64(sent.Planes[0][r*sent.Width+c])
			sse += d * d
		}
	}
	mse := sse / float64(sent.Width*sent.Height)
	if mse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/mse)
}

// connectPair connects alice to bob and waits until the default channel is open on both sides.
func connectPair(ctx context.Context, t *testing.T, alice, bob *rmw.Transport) {
	t.Helper()
	waitFor(ctx, t, alice, "alice to discover bob", func(e rmw.Event) bool {
		return e.Kind == rmw.EventPeerDiscovered && e.PeerID == "bob"
	})
	if err := alice.ConnectPeer(ctx, "bob"); err != nil {
		t.Fatalf("ConnectPeer(bob): %v", err)
	}
	waitFor(ctx, t, alice, "alice's channel to open", func(e rmw.Event) bool {
		return e.Kind == rmw.EventDataChannelOpen && e.PeerID == "bob"
	})
	waitFor(ctx, t, bob, "bob's channel to open", func(e rmw.Event) bool {
		return e.Kind == rmw.EventDataChannelOpen && e.PeerID == "alice"
	})
}

// videoCollector polls tr's video in the background (the library keeps only the newest few
// frames: a receiver must keep up), keeping frames of peer, until stop is called.
type videoCollector struct {
	mu     sync.Mutex
	frames []rmw.VideoFrame
	err    error
	done   chan struct{}
	quit   chan struct{}
}

func collectVideo(tr *rmw.Transport, peer string) *videoCollector {
	c := &videoCollector{done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(c.done)
		stopping := false
		for {
			if !stopping {
				select {
				case <-c.quit:
					stopping = true
				default:
				}
			}
			timeout := 50 * time.Millisecond
			if stopping {
				timeout = 0 // drain what is queued, then stop
			}
			f, err := tr.PollVideo(timeout)
			if errors.Is(err, rmw.ErrTimeout) {
				if stopping {
					return
				}
				continue
			}
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			if f.PeerID == peer {
				c.mu.Lock()
				c.frames = append(c.frames, f)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *videoCollector) stop() ([]rmw.VideoFrame, error) {
	close(c.quit)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.err
}

// sendPaced sends frames from..to-1 of the pattern at 30 fps in real time; at is called
// before each frame is sent.
func sendPaced(t *testing.T, track *rmw.VideoTrack, w, h, from, to int, at func(n int)) {
	t.Helper()
	start := time.Now()
	for n := from; n < to; n++ {
		if at != nil {
			at(n)
		}
		if err := track.Send(pattern(w, h, n)); err != nil {
			t.Fatalf("Send(frame %d): %v", n, err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(n-from+1) * time.Second / 30)))
	}
}

func videoDropped(t *testing.T, tr *rmw.Transport) int {
	t.Helper()
	st, err := tr.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	d, ok := st["video_frames_dropped"].(float64)
	if !ok {
		t.Fatalf("no video_frames_dropped in %v", st)
	}
	return int(d)
}

// testPatternArrives: alice sends 45 frames of the 320x240 pattern at 30 fps to bob, who
// polls concurrently; the frames must come in order, most of them, starting with a keyframe,
// in the codec asked for and close to what was sent. Then bob stops polling for 15 frames:
// only the newest 8 (video_queue_capacity) are kept.
func testPatternArrives(t *testing.T, codec string) {
	const w, h, sent = 320, 240, 45
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t)
	var trs []*rmw.Transport
	for _, id := range []string{"alice", "bob"} {
		tr, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), PeerID: id, ICEPolicy: "loopback", VideoCodec: codec})
		if err != nil {
			t.Fatalf("NewTransport(%s): %v", id, err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		trs = append(trs, tr)
	}
	alice, bob := trs[0], trs[1]
	connectPair(ctx, t, alice, bob)

	track, err := alice.AddVideoTrack(rmw.ToPeer("bob"), nil)
	if err != nil {
		t.Fatalf("AddVideoTrack: %v", err)
	}
	defer track.Close()
	if track.ID() == 0 || track.Config() != rmw.DefaultVideoTrackConfig() {
		t.Fatalf("track %d config %+v", track.ID(), track.Config())
	}

	rx := collectVideo(bob, "alice")
	sendPaced(t, track, w, h, 0, sent, func(n int) {
		switch n {
		case 20:
			if err := track.RequestKeyframe(); err != nil {
				t.Errorf("RequestKeyframe: %v", err)
			}
		case 30:
			if err := track.SetBitrate(800); err != nil {
				t.Errorf("SetBitrate(800): %v", err)
			}
		}
	})
	time.Sleep(500 * time.Millisecond) // the last frames' way through encoder, network, decoder
	frames, err := rx.stop()
	if err != nil {
		t.Fatalf("PollVideo: %v", err)
	}
	if len(frames) == 0 {
		t.Fatal("no video received")
	}

	var numbers []int
	minPSNR, sumPSNR := math.Inf(1), 0.0
	keyAfterRequest := false
	for i, f := range frames {
		if f.Width != w || f.Height != h || f.Format != rmw.VideoI420 || f.Codec != codec || len(f.Planes) != 3 || len(f.Strides) != 3 {
			t.Fatalf("frame %d: %dx%d %s %s, %d planes; want %dx%d i420 %s, 3 planes", i, f.Width, f.Height, f.Format, f.Codec, len(f.Planes), w, h, codec)
		}
		if f.Strides[0] < w || f.Strides[1] < (w+1)/2 || len(f.Planes[0]) != f.Strides[0]*h || len(f.Planes[2]) != f.Strides[2]*((h+1)/2) {
			t.Fatalf("frame %d: strides %v, plane sizes %d %d %d", i, f.Strides, len(f.Planes[0]), len(f.Planes[1]), len(f.Planes[2]))
		}
		if f.TrackID == "" || f.TrackID != frames[0].TrackID {
			t.Fatalf("frame %d of track %q, first of %q", i, f.TrackID, frames[0].TrackID)
		}
		if f.ArrivalUs == 0 || f.ArrivalUs > rmw.ClockUs() || (i > 0 && f.ArrivalUs < frames[i-1].ArrivalUs) {
			t.Fatalf("frame %d arrival %d µs", i, f.ArrivalUs)
		}
		n := frameNumber(f.Planes[0], f.Strides[0])
		if n < 0 || n >= sent {
			t.Fatalf("frame %d: unreadable frame number (%d)", i, n)
		}
		if i > 0 {
			prev := frames[i-1]
			if n <= numbers[i-1] {
				t.Fatalf("frame %d carries number %d after %d: out of order or repeated", i, n, numbers[i-1])
			}
			// 90 kHz clock, 30 fps: 3000 ticks a frame (the sender stamps capture time).
			if dt := f.RTPTimestamp - prev.RTPTimestamp; dt == 0 || dt > 90000 {
				t.Fatalf("frame %d: RTP timestamp %d after %d", i, f.RTPTimestamp, prev.RTPTimestamp)
			}
		}
		numbers = append(numbers, n)
		if f.Keyframe && n >= 20 {
			keyAfterRequest = true
		}
		p := lumaPSNR(f, pattern(w, h, n))
		sumPSNR += p
		minPSNR = math.Min(minPSNR, p)
		if p < 30 {
			t.Errorf("frame %d (number %d, key %v): luma PSNR %.1f dB < 30 dB", i, n, f.Keyframe, p)
		}
	}
	t.Logf("%s: %d of %d frames, numbers %v, luma PSNR min %.1f mean %.1f dB", codec, len(frames), sent, numbers, minPSNR, sumPSNR/float64(len(frames)))
	if len(frames) < sent*8/10 {
		t.Errorf("%d of %d frames arrived, want >= 80%%", len(frames), sent)
	}
	if !frames[0].Keyframe {
		t.Errorf("the first frame (number %d) is not a keyframe", numbers[0])
	}
	if numbers[len(numbers)-1] != sent-1 {
		t.Errorf("last frame received is %d, want %d (the newest frame always wins)", numbers[len(numbers)-1], sent-1)
	}
	if !keyAfterRequest {
		t.Errorf("no keyframe received at or after the RequestKeyframe before frame 20")
	}
	if d := videoDropped(t, bob); d != 0 {
		t.Logf("bob dropped %d frames while polling (slow machine?)", d)
	}

	// Announced when the first packet of the track arrived.
	ev := waitFor(ctx, t, bob, "TrackAdded (video)", func(e rmw.Event) bool {
		return e.Kind == rmw.EventTrackAdded && e.MediaKind == rmw.MediaVideo
	})
	if ev.PeerID != "alice" || ev.Codec != codec || ev.ClockRate != rmw.VideoClockRate || ev.TrackID != frames[0].TrackID {
		t.Errorf("TrackAdded = %+v (frames of track %q)", ev, frames[0].TrackID)
	}

	st, err := track.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	t.Logf("track stats %+v", st)
	if st.Track != track.ID() || st.FramesIn != sent || st.FramesEncoded+st.FramesDropped != sent || st.Peers != 1 || st.PeersBusy != 0 ||
		st.Width != w || st.Height != h || st.KeyframesEncoded < 2 || st.KeyframesRequested < 1 || st.TargetBitrateKbps != 800 ||
		st.PacketsSent < st.FramesEncoded || st.BytesSent < 50*st.PacketsSent || st.EncodeErrors != 0 {
		t.Errorf("stats %+v: want track %d, frames_in %d = encoded + dropped, 1 peer, %dx%d, >= 2 keyframes (1 requested), 800 kbit/s",
			st, track.ID(), sent, w, h)
	}

	// Bob stops polling while 15 more frames come: the queue keeps the newest 8.
	before := videoDropped(t, bob)
	sendPaced(t, track, w, h, sent, sent+15, nil)
	time.Sleep(400 * time.Millisecond)
	var kept []int
	for {
		f, err := bob.PollVideo(0)
		if errors.Is(err, rmw.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatalf("PollVideo(0): %v", err)
		}
		kept = append(kept, frameNumber(f.Planes[0], f.Strides[0]))
	}
	dropped := videoDropped(t, bob) - before
	t.Logf("not polled during 15 frames: kept %v, %d dropped", kept, dropped)
	if len(kept) != 8 || kept[7] != sent+14 || dropped < 1 {
		t.Errorf("kept %v (%d dropped); want the newest 8 frames, the last %d", kept, dropped, sent+14)
	}
	for i := 1; i < len(kept); i++ {
		if kept[i] <= kept[i-1] {
			t.Errorf("kept frames out of order: %v", kept)
		}
	}

	if err := track.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := track.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := track.Send(pattern(w, h, 0)); !errors.Is(err, rmw.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestVideoPatternVP8(t *testing.T) { testPatternArrives(t, "vp8") }

func TestVideoPatternVP9(t *testing.T) { testPatternArrives(t, "vp9") }

// TestVideoRGBA: RGBA and BGRA input with a padded stride (its padding garbage), received as
// RGBA ("video_output_format":"rgba"): two flat colours, each pixel within a few units.
func TestVideoRGBA(t *testing.T) {
	const w, h, stride = 160, 120, 4*160 + 48
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	bob, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), PeerID: "bob", ICEPolicy: "loopback", VideoOutputFormat: "rgba"})
	if err != nil {
		t.Fatalf("NewTransport(bob): %v", err)
	}
	t.Cleanup(func() { _ = bob.Close() })
	connectPair(ctx, t, alice, bob)

	left, right := [3]byte{200, 40, 60}, [3]byte{30, 160, 220}
	frame := func(bgra bool) rmw.RawVideoFrame {
		pix := make([]byte, stride*h)
		for i := range pix {
			pix[i] = 0xA5 // row padding: never read
		}
		for r := 0; r < h; r++ {
			for c := 0; c < w; c++ {
				col := left
				if c >= w/2 {
					col = right
				}
				p := pix[r*stride+4*c:]
				p[0], p[1], p[2], p[3] = col[0], col[1], col[2], 255
				if bgra {
					p[0], p[2] = col[2], col[0]
				}
			}
		}
		f := rmw.RawVideoFrame{Format: rmw.PixelRGBA, Width: w, Height: h, Planes: [][]byte{pix}, Strides: []int{stride}}
		if bgra {
			f.Format = rmw.PixelBGRA
		}
		return f
	}
	rgba, bgra := frame(false), frame(true)

	track, err := alice.AddVideoTrack(rmw.ToPeer("bob"), nil)
	if err != nil {
		t.Fatalf("AddVideoTrack: %v", err)
	}
	defer track.Close()
	rx := collectVideo(bob, "alice")
	start := time.Now()
	for n := 0; n < 20; n++ {
		f := rgba
		if n%2 == 1 {
			f = bgra
		}
		if err := track.Send(f); err != nil {
			t.Fatalf("Send(#%d, %s): %v", n, f.Format, err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(n+1) * time.Second / 30)))
	}
	time.Sleep(400 * time.Millisecond)
	frames, err := rx.stop()
	if err != nil {
		t.Fatalf("PollVideo: %v", err)
	}
	if len(frames) < 10 {
		t.Fatalf("%d of 20 frames arrived", len(frames))
	}
	worst := 0
	for i, f := range frames {
		if f.Format != rmw.VideoRGBA || f.Width != w || f.Height != h || len(f.Planes) != 1 || len(f.Strides) != 1 ||
			f.Strides[0] < 4*w || len(f.Planes[0]) != f.Strides[0]*h {
			t.Fatalf("frame %d: %s %dx%d, %d planes, strides %v", i, f.Format, f.Width, f.Height, len(f.Planes), f.Strides)
		}
		// Away from the edge between the colours (chroma is subsampled, the codec blurs).
		for _, at := range []struct {
			x, y int
			want [3]byte
		}{{8, 8, left}, {w/2 - 12, h - 10, left}, {w/2 + 12, 10, right}, {w - 4, h - 4, right}} {
			p := f.Planes[0][at.y*f.Strides[0]+4*at.x:]
			for c := 0; c < 3; c++ {
				d := int(p[c]) - int(at.want[c])
				if d < 0 {
					d = -d
				}
				if d > worst {
					worst = d
				}
				if d > 6 {
					t.Errorf("frame %d pixel (%d,%d) = %v, want %v ±6", i, at.x, at.y, p[:4], at.want)
				}
			}
			if p[3] != 255 {
				t.Errorf("frame %d pixel (%d,%d) alpha %d", i, at.x, at.y, p[3])
			}
		}
	}
	t.Logf("%d of 20 frames, RGBA %dx%d stride %d, largest colour error %d", len(frames), w, h, frames[0].Strides[0], worst)
}

func TestVideoBadArguments(t *testing.T) {
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")

	def := rmw.DefaultVideoTrackConfig()
	want := rmw.VideoTrackConfig{BitrateKbps: 1500, MinBitrateKbps: 150, FPS: 30, KeyframeInterval: 3000, Speed: rmw.VideoSpeedDefault, Threads: 1}
	if def != want {
		t.Fatalf("DefaultVideoTrackConfig() = %+v, want %+v", def, want)
	}
	for _, c := range []struct {
		name string
		set  func(*rmw.VideoTrackConfig)
	}{
		{"bitrate 10", func(c *rmw.VideoTrackConfig) { c.BitrateKbps = 10 }},
		{"bitrate 60000", func(c *rmw.VideoTrackConfig) { c.BitrateKbps = 60000 }},
		{"bitrate -1", func(c *rmw.VideoTrackConfig) { c.BitrateKbps = -1 }},
		{"min bitrate 10", func(c *rmw.VideoTrackConfig) { c.MinBitrateKbps = 10 }},
		{"fps 0", func(c *rmw.VideoTrackConfig) { c.FPS = 0 }},
		{"fps 121", func(c *rmw.VideoTrackConfig) { c.FPS = 121 }},
		{"speed 17", func(c *rmw.VideoTrackConfig) { c.Speed = 17 }},
		{"speed -17", func(c *rmw.VideoTrackConfig) { c.Speed = -17 }},
		{"threads 0", func(c *rmw.VideoTrackConfig) { c.Threads = 0 }},
		{"threads 17", func(c *rmw.VideoTrackConfig) { c.Threads = 17 }},
	} {
		cfg := rmw.DefaultVideoTrackConfig()
		c.set(&cfg)
		if tr, err := alice.AddVideoTrack(rmw.TrackTarget{}, &cfg); !errors.Is(err, rmw.ErrInvalidArgument) {
			t.Errorf("AddVideoTrack(%s) = %v, %v; want ErrInvalidArgument", c.name, tr, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	for _, c := range []struct {
		target rmw.TrackTarget
		want   error
	}{
		{rmw.ToPeer("nobody"), rmw.ErrNotFound},
		{rmw.ToSession("nowhere"), rmw.ErrNotFound},
		{rmw.TrackTarget{Kind: rmw.TargetPeer}, rmw.ErrInvalidArgument}, // no peer named
		{rmw.TrackTarget{Kind: 9}, rmw.ErrInvalidArgument},
		{rmw.ToPeer("a\x00b"), rmw.ErrInvalidArgument},
	} {
		if _, err := alice.AddVideoTrack(c.target, nil); !errors.Is(err, c.want) {
			t.Errorf("AddVideoTrack(%v) = %v, want %v", c.target, err, c.want)
		}
	}

	cfg := rmw.DefaultVideoTrackConfig()
	cfg.Speed, cfg.KeyframeInterval, cfg.Threads = 8, 0, 2
	track, err := alice.AddVideoTrack(rmw.TrackTarget{}, &cfg)
	if err != nil {
		t.Fatalf("AddVideoTrack(speed 8, libvpx keyframes, 2 threads, no target): %v", err)
	}
	if track.Config() != cfg {
		t.Errorf("Config() = %+v, want %+v", track.Config(), cfg)
	}
	const w, h = 64, 48
	good := pattern(w, h, 0)
	with := func(change func(f *rmw.RawVideoFrame)) rmw.RawVideoFrame {
		f := rmw.RawVideoFrame{Format: good.Format, Width: good.Width, Height: good.Height,
			Planes: append([][]byte(nil), good.Planes...), Strides: append([]int(nil), good.Strides...)}
		change(&f)
		return f
	}
	for _, c := range []struct {
		name  string
		frame rmw.RawVideoFrame
	}{
		{"width 0", with(func(f *rmw.RawVideoFrame) { f.Width = 0 })},
		{"height 0", with(func(f *rmw.RawVideoFrame) { f.Height = 0 })},
		{"width -1", with(func(f *rmw.RawVideoFrame) { f.Width = -1 })},
		{"short Y plane", with(func(f *rmw.RawVideoFrame) { f.Planes[0] = f.Planes[0][:w*h-1] })},
		{"short V plane", with(func(f *rmw.RawVideoFrame) { f.Planes[2] = f.Planes[2][:10] })},
		{"empty U plane", with(func(f *rmw.RawVideoFrame) { f.Planes[1] = nil })},
		{"Y stride below the width", with(func(f *rmw.RawVideoFrame) { f.Strides[0] = w - 1 })},
		{"I420 with one plane", with(func(f *rmw.RawVideoFrame) { f.Planes = f.Planes[:1] })},
		{"I420 with one stride", with(func(f *rmw.RawVideoFrame) { f.Strides = f.Strides[:1] })},
		{"negative stride", with(func(f *rmw.RawVideoFrame) { f.Strides[1] = -32 })},
		{"format 7", with(func(f *rmw.RawVideoFrame) { f.Format = 7 })},
		{"format -1", with(func(f *rmw.RawVideoFrame) { f.Format = -1 })},
		{"RGBA plane shorter than 4 x width x height", rmw.RawVideoFrame{Format: rmw.PixelRGBA, Width: w, Height: h, Planes: [][]byte{make([]byte, w*h*4-1)}}},
		{"BGRA stride below 4 x width", rmw.RawVideoFrame{Format: rmw.PixelBGRA, Width: w, Height: h, Planes: [][]byte{make([]byte, w*h*4)}, Strides: []int{w * 3}}},
		{"larger than the maximum size", rmw.RawVideoFrame{Format: rmw.PixelRGBA, Width: 1 << 20, Height: 1, Planes: [][]byte{make([]byte, 4<<20)}}},
	} {
		if err := track.Send(c.frame); !errors.Is(err, rmw.ErrInvalidArgument) {
			t.Errorf("Send(%s) = %v, want ErrInvalidArgument", c.name, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	oddNV12 := rmw.RawVideoFrame{Format: rmw.PixelNV12, Width: 33, Height: 17, Planes: [][]byte{make([]byte, 33*17), make([]byte, 34*9)}}
	paddedI420 := rmw.RawVideoFrame{Format: rmw.PixelI420, Width: 33, Height: 17,
		Planes: [][]byte{make([]byte, 40*17), make([]byte, 24*9), make([]byte, 24*9)}, Strides: []int{40, 24, 24}}
	for i, f := range []rmw.RawVideoFrame{good, oddNV12, paddedI420, good,
		{Format: rmw.PixelBGRA, Width: w, Height: h, Planes: [][]byte{make([]byte, 4*w*h)}}} {
		if err := track.Send(f); err != nil {
			t.Errorf("Send(#%d: %s %dx%d strides %v): %v", i, f.Format, f.Width, f.Height, f.Strides, err)
		}
	}
	if err := track.SetBitrate(10); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Errorf("SetBitrate(10) = %v, want ErrInvalidArgument", err)
	}
	if err := track.SetBitrate(-5); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Errorf("SetBitrate(-5) = %v, want ErrInvalidArgument", err)
	}
	if err := track.SetBitrate(300); err != nil {
		t.Errorf("SetBitrate(300): %v", err)
	}
	if err := track.RequestKeyframe(); err != nil {
		t.Errorf("RequestKeyframe: %v", err)
	}
	if err := track.SetTarget(rmw.ToPeer("nobody")); !errors.Is(err, rmw.ErrNotFound) {
		t.Errorf("SetTarget(nobody) = %v, want ErrNotFound", err)
	}
	if err := track.SetTarget(rmw.ToAllPeers()); err != nil {
		t.Errorf("SetTarget(all): %v", err)
	}
	if st, err := track.Stats(); err != nil || st.Track != track.ID() || st.FramesIn != 5 || st.Peers != 0 || st.TargetBitrateKbps != 300 {
		t.Errorf("Stats = %+v, %v; want track %d, frames_in 5, no peers, 300 kbit/s", st, err, track.ID())
	}
	if err := track.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := track.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"Send":            track.Send(good),
		"SetTarget":       track.SetTarget(rmw.TrackTarget{}),
		"SetBitrate":      track.SetBitrate(500),
		"RequestKeyframe": track.RequestKeyframe(),
	} {
		if !errors.Is(err, rmw.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := track.Stats(); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("Stats after Close = %v, want ErrClosed", err)
	}

	// Nothing received: PollVideo times out.
	if _, err := alice.PollVideo(0); !errors.Is(err, rmw.ErrTimeout) {
		t.Errorf("PollVideo(0) = %v, want ErrTimeout", err)
	}
	start := time.Now()
	if _, err := alice.PollVideo(30 * time.Millisecond); !errors.Is(err, rmw.ErrTimeout) || time.Since(start) < 25*time.Millisecond {
		t.Errorf("PollVideo(30 ms) = %v after %v, want ErrTimeout after 30 ms", err, time.Since(start))
	}
	short, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	if _, err := alice.NextVideo(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextVideo(80 ms ctx) = %v, want DeadlineExceeded", err)
	}

	// Transport configuration.
	for name, c := range map[string]rmw.Config{
		"video_output_format yuv":    {ICEPolicy: "loopback", VideoOutputFormat: "yuv"},
		"video_codec h264":           {ICEPolicy: "loopback", VideoCodec: "h264"},
		"video_queue_capacity 5000":  {ICEPolicy: "loopback", VideoQueueCapacity: 5000},
		"video_max_delay_ms 1":       {ICEPolicy: "loopback", VideoMaxDelayMs: 1},
		"simulate_loss_percent 60":   {ICEPolicy: "loopback", SimulateLossPercent: 60},
		"video_queue_capacity -1":    {ICEPolicy: "loopback", VideoQueueCapacity: -1},
		"simulate_loss_percent -100": {ICEPolicy: "loopback", SimulateLossPercent: -100},
	} {
		if tr, err := rmw.NewTransport(c); !errors.Is(err, rmw.ErrConfig) {
			t.Errorf("%s = %v, want ErrConfig", name, err)
			if tr != nil {
				tr.Close()
			}
		}
	}
	noVideo, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), ICEPolicy: "loopback", EnableVideo: rmw.Bool(false),
		VideoQueueCapacity: 2, VideoMaxDelayMs: 50, SimulateLossPercent: 10, VideoOutputFormat: "rgba", VideoCodec: "vp9"})
	if err != nil {
		t.Fatalf("NewTransport(enable_video false, ...): %v", err)
	}
	if _, err := noVideo.AddVideoTrack(rmw.TrackTarget{}, nil); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Errorf("AddVideoTrack with video disabled = %v, want ErrInvalidArgument", err)
	}
	noVideo.Close()

	// Closing the transport frees its tracks; a blocked PollVideo returns.
	orphan, err := alice.AddVideoTrack(rmw.ToAllPeers(), nil)
	if err != nil {
		t.Fatalf("AddVideoTrack: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := alice.PollVideo(-1)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := alice.Close(); err != nil {
		t.Fatalf("transport Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, rmw.ErrClosed) {
			t.Errorf("PollVideo(-1) during Close = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("PollVideo(-1) still blocked 2 s after Close")
	}
	if err := orphan.Send(good); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("Send after transport Close = %v, want ErrClosed", err)
	}
	if err := orphan.Close(); err != nil {
		t.Errorf("track Close after transport Close = %v, want nil", err)
	}
	if _, err := alice.AddVideoTrack(rmw.TrackTarget{}, nil); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("AddVideoTrack after Close = %v, want ErrClosed", err)
	}
	if _, err := alice.PollVideo(0); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("PollVideo after Close = %v, want ErrClosed", err)
	}
}

// TestVideoTrackFinalizer: a track that became unreachable is closed by its finalizer.
func TestVideoTrackFinalizer(t *testing.T) {
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	tracks := func() int {
		st, err := alice.Stats()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		l, _ := st["video_tracks"].([]any)
		return len(l)
	}
	func() {
		if _, err := alice.AddVideoTrack(rmw.TrackTarget{}, nil); err != nil {
			t.Fatalf("AddVideoTrack: %v", err)
		}
	}()
	if n := tracks(); n != 1 {
		t.Fatalf("%d video tracks in the transport's stats, want 1", n)
	}
	for i := 0; i < 50 && tracks() != 0; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if n := tracks(); n != 0 {
		t.Fatalf("%d video tracks left after GC: the finalizer did not close the forgotten track", n)
	}
}
