// Command chat: two peers, alice and bob, chat over WebRTC data channels on this machine,
// through the signaling server embedded in the library (loopback ICE only).
//
//	go run ./examples/chat
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	rmw "github.com/remotemedia/remotemedia-webrtc/bindings/go"
)

// waitFor reads events of tr until match returns true.
func waitFor(ctx context.Context, name string, tr *rmw.Transport, match func(rmw.Event) bool) rmw.Event {
	for {
		ev, err := tr.Next(ctx)
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		fmt.Printf("%s: %s\n", name, ev)
		if ev.Kind == rmw.EventError || (ev.Kind == rmw.EventPeerStateChanged && ev.PeerState == rmw.PeerFailed) {
			log.Fatalf("%s: %s", name, ev)
		}
		if match(ev) {
			return ev
		}
	}
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fmt.Printf("remotemedia-webrtc %s (ABI %d)\n", rmw.Version(), rmw.ABIVersion())

	srv, err := rmw.StartSignalingServer("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	fmt.Println("signaling server on", srv.URL())

	open := func(id string) *rmw.Transport {
		tr, err := rmw.NewTransport(rmw.Config{SignalingURL: srv.URL(), PeerID: id, ICEPolicy: "loopback"})
		if err != nil {
			log.Fatal(err)
		}
		return tr
	}
	alice, bob := open("alice"), open("bob")
	defer alice.Close()
	defer bob.Close()

	waitFor(ctx, "alice", alice, func(e rmw.Event) bool { return e.Kind == rmw.EventPeerDiscovered && e.PeerID == "bob" })
	if err := alice.ConnectPeer(ctx, "bob"); err != nil {
		log.Fatal(err)
	}
	isOpen := func(e rmw.Event) bool { return e.Kind == rmw.EventDataChannelOpen && e.Label == "data" }
	waitFor(ctx, "alice", alice, isOpen)
	waitFor(ctx, "bob", bob, isOpen)

	isMsg := func(e rmw.Event) bool { return e.Kind == rmw.EventDataChannelMessage }
	for _, line := range []string{"hello bob", "how are you, bob?"} {
		if _, err := alice.SendText("bob", line); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("bob got: %s\n", waitFor(ctx, "bob", bob, isMsg).Text())
	}
	if _, err := bob.SendData("alice", []byte{0, 1, 2, 0xff}, true); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("alice got binary: %x\n", waitFor(ctx, "alice", alice, isMsg).Data)
	fmt.Println("chat: OK")
}
