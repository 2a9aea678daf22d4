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

// sine returns n samples of a mono 0.3-amplitude sine of hz at rate, starting at sample start.
func sine(hz float64, rate, start, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(0.3 * math.Sin(2*math.Pi*hz*float64(start+i)/float64(rate)))
	}
	return out
}

// frequency measures the dominant frequency of x by its rising zero crossings (interpolated
// between samples).
func frequency(x []float32, rate int) float64 {
	first, last, count := -1.0, 0.0, 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			at := float64(i-1) + float64(x[i-1])/float64(x[i-1]-x[i])
			if first < 0 {
				first = at
			}
			last = at
			count++
		}
	}
	if count < 2 {
		return 0
	}
	return float64(count-1) * float64(rate) / (last - first)
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// channel returns channel c of interleaved frames, concatenated.
func channel(frames []rmw.AudioFrame, c int) []float32 {
	var out []float32
	for _, f := range frames {
		s := f.Float32()
		for i := c; i < len(s); i += f.Channels {
			out = append(out, s[i])
		}
	}
	return out
}

// collector polls tr's audio in the background, keeping frames of peer, until stop is called.
type collector struct {
	mu     sync.Mutex
	frames []rmw.AudioFrame
	err    error
	done   chan struct{}
	quit   chan struct{}
}

func collectAudio(tr *rmw.Transport, peer string) *collector {
	c := &collector{done: make(chan struct{}), quit: make(chan struct{})}
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
			f, err := tr.PollAudio(timeout)
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

func (c *collector) stop() ([]rmw.AudioFrame, error) {
	close(c.quit)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.err
}

// checkTone checks frames from one remote track: format, no concealment, continuous RTP
// time, at least minSeconds of audio, and a 440 Hz, 0.3-amplitude sine on every channel.
func checkTone(t *testing.T, who string, frames []rmw.AudioFrame, channels int, format rmw.SampleFormat, minSeconds float64) {
	t.Helper()
	if len(frames) == 0 {
		t.Fatalf("%s: no audio received", who)
	}
	total := 0
	for i, f := range frames {
		if f.SampleRate != 48000 || f.Channels != channels || f.Format != format {
			t.Fatalf("%s: frame %d is %d Hz x %d %s, want 48000 Hz x %d %s", who, i, f.SampleRate, f.Channels, f.Format, channels, format)
		}
		n := f.SamplesPerChannel * f.Channels
		if (format == rmw.SampleFloat32 && (len(f.F32) != n || f.S16 != nil)) || (format == rmw.SampleInt16 && (len(f.S16) != n || f.F32 != nil)) {
			t.Fatalf("%s: frame %d: %d samples per channel but len(F32)=%d len(S16)=%d", who, i, f.SamplesPerChannel, len(f.F32), len(f.S16))
		}
		if f.Concealed {
			t.Fatalf("%s: frame %d concealed on a lossless loopback link", who, i)
		}
		if f.TrackID == "" || f.TrackID != frames[0].TrackID {
			t.Fatalf("%s: frame %d of track %q, first of %q", who, i, f.TrackID, frames[0].TrackID)
		}
		if f.ArrivalUs == 0 || f.ArrivalUs > rmw.ClockUs() {
			t.Fatalf("%s: frame %d arrival %d µs, clock now %d µs", who, i, f.ArrivalUs, rmw.ClockUs())
		}
		if i > 0 {
			prev := frames[i-1]
			if want := prev.RTPTimestamp + uint32(prev.SamplesPerChannel); f.RTPTimestamp != want {
				t.Fatalf("%s: gap in RTP time at frame %d: %d, want %d", who, i, f.RTPTimestamp, want)
			}
		}
		total += f.SamplesPerChannel
	}
	secs := float64(total) / 48000
	if secs < minSeconds {
		t.Fatalf("%s: %.2f s of audio received, want >= %.2f s", who, secs, minSeconds)
	}
	for c := 0; c < channels; c++ {
		x := channel(frames, c)[4800:] // the codec fades in over the first 100 ms
		hz, level := frequency(x, 48000), rms(x)
		t.Logf("%s: %d frames, %.2f s, channel %d: %.2f Hz, RMS %.3f, level %d -dBov", who, len(frames), secs, c, hz, level, frames[len(frames)/2].Level)
		if math.Abs(hz-440) > 3 {
			t.Errorf("%s: channel %d: %.2f Hz received, 440 Hz sent", who, c, hz)
		}
		if level < 0.12 || level > 0.32 {
			t.Errorf("%s: channel %d: RMS %.3f for a 0.3 sine (0.212)", who, c, level)
		}
	}
	if l := frames[len(frames)/2].Level; l > 40 {
		t.Errorf("%s: level %d -dBov in the middle of a 0.3 sine", who, l)
	}
}

// TestAudioSineArrives: alice sends 1.5 s of a 440 Hz sine, paced in real time in 20 ms
// chunks (alternately float32 and int16) to bob, and after 0.5 s to every peer, carol
// included. Bob decodes to the default 48 kHz stereo float32, carol to mono int16.
func TestAudioSineArrives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	bob := newTransport(t, srv, "bob")
	carol, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), PeerID: "carol", ICEPolicy: "loopback",
		AudioOutputChannels: 1, AudioOutputFormat: "s16"})
	if err != nil {
		t.Fatalf("NewTransport(carol): %v", err)
	}
	t.Cleanup(func() { _ = carol.Close() })

	seen := map[string]bool{}
	waitFor(ctx, t, alice, "alice to discover bob and carol", func(e rmw.Event) bool {
		if e.Kind == rmw.EventPeerDiscovered {
			seen[e.PeerID] = true
		}
		return seen["bob"] && seen["carol"]
	})
	for _, p := range []string{"bob", "carol"} {
		if err := alice.ConnectPeer(ctx, p); err != nil {
			t.Fatalf("ConnectPeer(%s): %v", p, err)
		}
	}
	open := map[string]bool{}
	waitFor(ctx, t, alice, "alice's channels to open", func(e rmw.Event) bool {
		if e.Kind == rmw.EventDataChannelOpen {
			open[e.PeerID] = true
		}
		return open["bob"] && open["carol"]
	})
	for _, r := range []*rmw.Transport{bob, carol} {
		waitFor(ctx, t, r, "channel from alice to open", func(e rmw.Event) bool {
			return e.Kind == rmw.EventDataChannelOpen && e.PeerID == "alice"
		})
	}

	track, err := alice.AddAudioTrack(rmw.ToPeer("bob"), nil)
	if err != nil {
		t.Fatalf("AddAudioTrack: %v", err)
	}
	defer track.Close()
	if track.ID() == 0 || track.Config() != rmw.DefaultAudioTrackConfig() {
		t.Fatalf("track %d config %+v", track.ID(), track.Config())
	}
	bobRx, carolRx := collectAudio(bob, "alice"), collectAudio(carol, "alice")

	const chunk, total = 960, 72000 // 20 ms chunks, 1.5 s
	start := time.Now()
	sent := 0
	for k := 0; sent < total; k++ {
		pcm := sine(440, 48000, sent, chunk)
		if k%2 == 0 {
			err = track.SendFloat32(pcm)
		} else {
			s16 := make([]int16, len(pcm))
			for i, v := range pcm {
				s16[i] = int16(math.Round(float64(v) * 32767))
			}
			err = track.SendInt16(s16)
		}
		if err != nil {
			t.Fatalf("send #%d: %v", k, err)
		}
		sent += chunk
		if sent == 24000 { // 0.5 s: carol joins through the target
			if err := track.SetTarget(rmw.ToAllPeers()); err != nil {
				t.Fatalf("SetTarget(all): %v", err)
			}
		}
		time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / 48000)))
	}
	time.Sleep(300 * time.Millisecond) // the last frames' way through encoder, network, jitter buffer
	bobFrames, err := bobRx.stop()
	if err != nil {
		t.Fatalf("bob PollAudio: %v", err)
	}
	carolFrames, err := carolRx.stop()
	if err != nil {
		t.Fatalf("carol PollAudio: %v", err)
	}
	checkTone(t, "bob", bobFrames, 2, rmw.SampleFloat32, 1.3)
	checkTone(t, "carol", carolFrames, 1, rmw.SampleInt16, 0.8)

	// Announced when the first packet of the track arrived.
	for _, c := range []struct {
		tr     *rmw.Transport
		name   string
		frames []rmw.AudioFrame
	}{{bob, "bob", bobFrames}, {carol, "carol", carolFrames}} {
		ev := waitFor(ctx, t, c.tr, c.name+": TrackAdded", func(e rmw.Event) bool { return e.Kind == rmw.EventTrackAdded })
		if ev.PeerID != "alice" || ev.MediaKind != rmw.MediaAudio || ev.Codec != "opus" || ev.ClockRate != 48000 ||
			ev.TrackID == "" || ev.TrackID != c.frames[0].TrackID || ev.Channels == 0 {
			t.Fatalf("%s: TrackAdded = %+v (frames of track %q)", c.name, ev, c.frames[0].TrackID)
		}
	}

	st, err := track.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	t.Logf("track stats %+v", st)
	if st.SamplesIn != uint64(sent) || st.FramesEncoded != uint64(sent/chunk) || st.QueueFull != 0 || st.FramesDTX != 0 {
		t.Errorf("stats %+v: want samples_in %d, frames_encoded %d, no queue_full, no dtx", st, sent, sent/chunk)
	}
	// Every frame to bob, the last 1 s of them to carol too.
	if st.Peers != 2 || st.PeersBusy != 0 || st.PacketsSent <= st.FramesEncoded || st.PacketsSent > 2*st.FramesEncoded ||
		st.BytesSent < 10*st.PacketsSent {
		t.Errorf("stats %+v: want 2 peers, none busy, frames_encoded < packets_sent <= 2 x frames_encoded", st)
	}
	if ts, err := bob.Stats(); err != nil || ts["audio_frames_dropped"] != float64(0) {
		t.Errorf("bob's transport stats %v, %v: want audio_frames_dropped 0", ts, err)
	}

	if err := track.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := track.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := track.SendFloat32(pcmSilence(960)); !errors.Is(err, rmw.ErrClosed) {
		t.Fatalf("SendFloat32 after Close = %v, want ErrClosed", err)
	}
}

func pcmSilence(n int) []float32 { return make([]float32, n) }

func TestAudioBadArguments(t *testing.T) {
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")

	def := rmw.DefaultAudioTrackConfig()
	want := rmw.AudioTrackConfig{SampleRate: 48000, Channels: 1, FrameMs: 20, Bitrate: 32000, Complexity: 9, FEC: true,
		ExpectedLossPercent: 10, DTX: false, Application: rmw.OpusVoIP, MaxQueueMs: 200}
	if def != want {
		t.Fatalf("DefaultAudioTrackConfig() = %+v, want %+v", def, want)
	}
	for _, c := range []struct {
		name string
		set  func(*rmw.AudioTrackConfig)
	}{
		{"channels 3", func(c *rmw.AudioTrackConfig) { c.Channels = 3 }},
		{"channels 0", func(c *rmw.AudioTrackConfig) { c.Channels = 0 }},
		{"channels -1", func(c *rmw.AudioTrackConfig) { c.Channels = -1 }},
		{"sample rate 22050", func(c *rmw.AudioTrackConfig) { c.SampleRate = 22050 }},
		{"frame 15 ms", func(c *rmw.AudioTrackConfig) { c.FrameMs = 15 }},
		{"bitrate 1000", func(c *rmw.AudioTrackConfig) { c.Bitrate = 1000 }},
		{"complexity 11", func(c *rmw.AudioTrackConfig) { c.Complexity = 11 }},
		{"application 7", func(c *rmw.AudioTrackConfig) { c.Application = 7 }},
		{"queue shorter than a frame", func(c *rmw.AudioTrackConfig) { c.MaxQueueMs = 5 }},
	} {
		cfg := rmw.DefaultAudioTrackConfig()
		c.set(&cfg)
		if tr, err := alice.AddAudioTrack(rmw.TrackTarget{}, &cfg); !errors.Is(err, rmw.ErrInvalidArgument) {
			t.Errorf("AddAudioTrack(%s) = %v, %v; want ErrInvalidArgument", c.name, tr, err)
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
		if _, err := alice.AddAudioTrack(c.target, nil); !errors.Is(err, c.want) {
			t.Errorf("AddAudioTrack(%v) = %v, want %v", c.target, err, c.want)
		}
	}

	stereoCfg := rmw.DefaultAudioTrackConfig()
	stereoCfg.Channels = 2
	stereo, err := alice.AddAudioTrack(rmw.TrackTarget{}, &stereoCfg)
	if err != nil {
		t.Fatalf("AddAudioTrack(stereo, no target): %v", err)
	}
	if err := stereo.SendFloat32(make([]float32, 3)); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Errorf("3 samples on a stereo track = %v, want ErrInvalidArgument", err)
	}
	if err := stereo.SendFloat32(nil); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Errorf("no samples = %v, want ErrInvalidArgument", err)
	}
	if err := stereo.SendInt16(make([]int16, 4)); err != nil {
		t.Errorf("2 stereo frames of int16: %v", err)
	}
	if err := stereo.SendFloat32(make([]float32, 1920)); err != nil {
		t.Errorf("960 stereo frames of float32: %v", err)
	}
	if err := stereo.SetTarget(rmw.ToPeer("nobody")); !errors.Is(err, rmw.ErrNotFound) {
		t.Errorf("SetTarget(nobody) = %v, want ErrNotFound", err)
	}
	if err := stereo.SetTarget(rmw.ToAllPeers()); err != nil {
		t.Errorf("SetTarget(all): %v", err)
	}
	if st, err := stereo.Stats(); err != nil || st.SamplesIn != 962 || st.Peers != 0 {
		t.Errorf("Stats = %+v, %v; want samples_in 962, no peers", st, err)
	}
	if err := stereo.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := stereo.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"SendFloat32": stereo.SendFloat32(make([]float32, 2)),
		"SendInt16":   stereo.SendInt16(make([]int16, 2)),
		"SetTarget":   stereo.SetTarget(rmw.TrackTarget{}),
	} {
		if !errors.Is(err, rmw.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := stereo.Stats(); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("Stats after Close = %v, want ErrClosed", err)
	}

	// Nothing received: PollAudio times out.
	if _, err := alice.PollAudio(0); !errors.Is(err, rmw.ErrTimeout) {
		t.Errorf("PollAudio(0) = %v, want ErrTimeout", err)
	}
	start := time.Now()
	if _, err := alice.PollAudio(30 * time.Millisecond); !errors.Is(err, rmw.ErrTimeout) || time.Since(start) < 25*time.Millisecond {
		t.Errorf("PollAudio(30 ms) = %v after %v, want ErrTimeout after 30 ms", err, time.Since(start))
	}
	short, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	if _, err := alice.NextAudio(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NextAudio(80 ms ctx) = %v, want DeadlineExceeded", err)
	}

	// Transport configuration.
	if _, err := rmw.NewTransport(rmw.Config{ICEPolicy: "loopback", AudioOutputFormat: "u8"}); !errors.Is(err, rmw.ErrConfig) {
		t.Errorf("audio_output_format u8 = %v, want ErrConfig", err)
	}
	if _, err := rmw.NewTransport(rmw.Config{ICEPolicy: "loopback", AudioOutputChannels: 3}); !errors.Is(err, rmw.ErrConfig) {
		t.Errorf("audio_output_channels 3 = %v, want ErrConfig", err)
	}
	noAudio, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), ICEPolicy: "loopback", EnableAudio: rmw.Bool(false)})
	if err != nil {
		t.Fatalf("NewTransport(enable_audio false): %v", err)
	}
	if _, err := noAudio.AddAudioTrack(rmw.TrackTarget{}, nil); !errors.Is(err, rmw.ErrInvalidArgument) {
		t.Errorf("AddAudioTrack with audio disabled = %v, want ErrInvalidArgument", err)
	}
	noAudio.Close()

	// Closing the transport frees its tracks; a blocked PollAudio returns.
	orphan, err := alice.AddAudioTrack(rmw.ToAllPeers(), nil)
	if err != nil {
		t.Fatalf("AddAudioTrack: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := alice.PollAudio(-1)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := alice.Close(); err != nil {
		t.Fatalf("transport Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, rmw.ErrClosed) {
			t.Errorf("PollAudio(-1) during Close = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("PollAudio(-1) still blocked 2 s after Close")
	}
	if err := orphan.SendFloat32(make([]float32, 960)); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("SendFloat32 after transport Close = %v, want ErrClosed", err)
	}
	if err := orphan.Close(); err != nil {
		t.Errorf("track Close after transport Close = %v, want nil", err)
	}
	if _, err := alice.AddAudioTrack(rmw.TrackTarget{}, nil); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("AddAudioTrack after Close = %v, want ErrClosed", err)
	}
	if _, err := alice.PollAudio(0); !errors.Is(err, rmw.ErrClosed) {
		t.Errorf("PollAudio after Close = %v, want ErrClosed", err)
	}
}

// TestAudioQueueFull: sending far faster than real time into a 100 ms queue is refused
// with ErrQueueFull, never blocks, and the refusals are counted.
func TestAudioQueueFull(t *testing.T) {
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	cfg := rmw.DefaultAudioTrackConfig()
	cfg.MaxQueueMs = 100
	track, err := alice.AddAudioTrack(rmw.TrackTarget{}, &cfg)
	if err != nil {
		t.Fatalf("AddAudioTrack: %v", err)
	}
	defer track.Close()
	pcm := sine(440, 48000, 0, 4800) // 100 ms a call
	refused, accepted := 0, 0
	var qerr error
	start := time.Now()
	for i := 0; i < 200; i++ {
		switch err := track.SendFloat32(pcm); {
		case err == nil:
			accepted++
		case errors.Is(err, rmw.ErrQueueFull):
			refused++
			qerr = err
		default:
			t.Fatalf("send #%d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	t.Logf("20 s of audio offered in %v: %d accepted, %d refused (%v)", elapsed, accepted, refused, qerr)
	if refused == 0 {
		t.Fatal("200 x 100 ms sent at once into a 100 ms queue: none refused")
	}
	if elapsed > 2*time.Second {
		t.Errorf("sending blocked: %v", elapsed)
	}
	var e *rmw.Error
	if !errors.As(qerr, &e) || e.Status != rmw.StatusQueueFull || errors.Is(qerr, rmw.ErrTimeout) {
		t.Errorf("queue full error %#v", qerr)
	}
	st, err := track.Stats()
	if err != nil || st.QueueFull != uint64(refused) || st.SamplesIn != uint64(accepted*4800) {
		t.Errorf("Stats = %+v, %v; want queue_full %d, samples_in %d", st, err, refused, accepted*4800)
	}
}

// TestAudioTrackFinalizer: a track that became unreachable is closed by its finalizer.
func TestAudioTrackFinalizer(t *testing.T) {
	srv := startServer(t)
	alice := newTransport(t, srv, "alice")
	tracks := func() int {
		st, err := alice.Stats()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		l, _ := st["audio_tracks"].([]any)
		return len(l)
	}
	func() {
		if _, err := alice.AddAudioTrack(rmw.TrackTarget{}, nil); err != nil {
			t.Fatalf("AddAudioTrack: %v", err)
		}
	}()
	if n := tracks(); n != 1 {
		t.Fatalf("%d audio tracks in the transport's stats, want 1", n)
	}
	for i := 0; i < 50 && tracks() != 0; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if n := tracks(); n != 0 {
		t.Fatalf("%d audio tracks left after GC: the finalizer did not close the forgotten track", n)
	}
}
