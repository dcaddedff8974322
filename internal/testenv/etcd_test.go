package testenv

import (
	"context"
	"testing"
	"time"
)

func TestEtcdPerTest(t *testing.T) {
	c := EtcdClient(t, Etcd(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
}
