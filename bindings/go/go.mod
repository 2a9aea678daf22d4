module github.com/remotemedia/remotemedia-webrtc/bindings/go

go 1.21
