package rmw

/*
#include <stdlib.h>
#include <remotemedia_webrtc.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// SignalingServer is the library's signaling server running in this process.
type SignalingServer struct {
	h    C.rmw_signaling_server_t
	url  string
	port uint16
	once sync.Once
}

// StartSignalingServer starts the bundled signaling server on addr ("127.0.0.1:0" picks a
// free port; "" means "127.0.0.1:8080") and returns once the socket is bound.
func StartSignalingServer(addr string) (*SignalingServer, error) {
	var caddr *C.char
	if addr != "" {
		var err error
		if caddr, err = cString(addr); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(caddr))
	}
	var h C.rmw_signaling_server_t
	if err := call(func() C.rmw_status_t { return C.rmw_signaling_server_start(caddr, 0, &h) }); err != nil {
		return nil, err
	}
	s := &SignalingServer{h: h}
	var port C.uint16_t
	err := call(func() C.rmw_status_t { return C.rmw_signaling_server_port(h, &port) })
	if err == nil {
		s.url, err = getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
			return C.rmw_signaling_server_url(h, buf, n)
		})
	}
	if err != nil {
		C.rmw_signaling_server_stop(h)
		return nil, err
	}
	s.port = uint16(port)
	runtime.SetFinalizer(s, (*SignalingServer).Stop)
	return s, nil
}

// URL returns the ws://host:port URL clients use (Config.SignalingURL).
func (s *SignalingServer) URL() string { return s.url }

// Port returns the TCP port the server listens on.
func (s *SignalingServer) Port() uint16 { return s.port }

// Stop closes every client connection and joins the server's threads. Peer connections set
// up through it are not affected. Calling Stop again returns nil.
func (s *SignalingServer) Stop() error {
	var err error
	s.once.Do(func() {
		runtime.SetFinalizer(s, nil)
		h := s.h
		err = call(func() C.rmw_status_t { return C.rmw_signaling_server_stop(h) })
	})
	return err
}
