// Package freeport picks unused TCP ports on the loopback interface and names
// the process holding a taken one.
//
// The port is found by binding to 127.0.0.1:0 and closing the listener, so
// another process may take it before the caller binds it; callers that start
// a server on the returned port should be ready to retry on a bind error.
package freeport

import (
	"fmt"
	"net"
)

// Get returns a TCP port on 127.0.0.1 that was free a moment ago.
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	return port, nil
}

// GetN returns n distinct free ports. All listeners are held until every port
// has been found so that the ports differ from one another.
func GetN(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
