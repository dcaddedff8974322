package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/msctl/msctl/internal/runtime"
	"github.com/msctl/msctl/internal/state"
)

// Cleanup removes every container and the network of the workspace, and
// with volumes its data too. It is idempotent and works whichever process
// created them.
func (r *Runtime) Cleanup(ctx context.Context, volumes bool) error {
	ctx, cancel := forced(ctx)
	defer cancel()
	r.dropPG()
	cs, err := r.list(ctx, nil)
	if err != nil {
		return err
	}
	var errs []error
	var emu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := r.removeContainer(ctx, c.ID); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := r.cli.NetworkRemove(ctx, NetworkName(r.project)); err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("remove network: %w", err))
	}
	if volumes {
		vs, err := r.cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelWorkspace+"="+r.project))})
		if err != nil {
			errs = append(errs, fmt.Errorf("list volumes: %w", err))
		} else {
			for _, v := range vs.Volumes {
				if err := r.cli.VolumeRemove(ctx, v.Name, true); err != nil && !isNotFound(err) {
					errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
				}
			}
		}
	}
	r.mu.Lock()
	r.infra = nil
	r.mu.Unlock()
	return errors.Join(errs...)
}

// forcedTimeout bounds the removals of a forced stop.
const forcedTimeout = 30 * time.Second

// forced returns ctx, or when ctx has ended (a forced stop: the user does
// not want to wait) a short-lived context of its own: removing containers
// takes a moment, leaving them running would outlive msctl.
func forced(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), forcedTimeout)
}

// Prune removes what a new `up` cannot reuse and keeps the rest for
// adoption: containers that are not running, containers of services the
// manifest no longer declares, and the oldest running containers of a
// service beyond its replica count. The rest stays, so that Start,
// StartInfra and StartChaos adopt the unchanged ones.
func (r *Runtime) Prune(ctx context.Context, replicas map[string]int) error {
	cs, err := r.list(ctx, nil)
	if err != nil {
		return err
	}
	// Newest first, so that the replicas kept are the latest configuration.
	slices.SortStableFunc(cs, func(a, b container.Summary) int { return cmp.Compare(b.Created, a.Created) })
	infra := []string{runtime.Postgres, runtime.Broker, runtime.Registry}
	running := map[string]int{}
	var errs []error
	for _, c := range cs {
		name := c.Labels[LabelComponent]
		known := c.Labels[LabelKind] == state.KindInfra && slices.Contains(infra, name) || c.Labels[LabelKind] == kindChaos
		if want, ok := replicas[name]; ok && c.Labels[LabelKind] == state.KindService && c.State == "running" {
			running[name]++
			known = running[name] <= want
		}
		if c.State == "running" && known || r.isClaimed(c.ID) {
			continue
		}
		r.log.Debug("pruning", "component", name, "container", shortID(c.ID), "state", c.State)
		if err := r.removeContainer(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Containers counts the workspace's containers, running or not: what
// Cleanup would remove. down uses it to tell a dead agent's leftovers from
// nothing at all.
func (r *Runtime) Containers(ctx context.Context) (int, error) {
	cs, err := r.list(ctx, nil)
	return len(cs), err
}
