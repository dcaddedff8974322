// Package tracestore keeps the spans the agent receives on disk, in one
// bbolt file under the workspace's .msctl/, so that traces outlive the agent:
// a restart, down and up. The store is bounded by size and age, the oldest
// traces going first. The agent writes it; the CLI reads it read-only when no
// agent runs (bbolt's file lock lets one writer or many readers in).
package tracestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/msctl/msctl/internal/state"
)

// FileName is the store's file in the workspace's state directory.
const FileName = "traces.db"

// Defaults of the bounds; msctl.yaml's observability.traces changes them.
const (
	DefaultMaxSize = 64 << 20
	DefaultMaxAge  = 24 * time.Hour
)

// defaultMaxPending bounds the spans waiting for the writer: a disk that
// stalls must not grow the agent's memory without end.
const defaultMaxPending = 100_000

// Buckets: spans by trace id + span id (JSON state.Span); one meta record per
// trace (its summary, size and arrival); and the arrival order, keyed by the
// arrival time then the trace id, oldest first, which eviction walks.
var (
	bucketSpans  = []byte("spans")
	bucketTraces = []byte("traces")
	bucketOrder  = []byte("order")
)

// ErrNotFound is returned for a trace the store does not hold.
var ErrNotFound = errors.New("no such trace")

// Options bound a store; zero fields take the defaults.
type Options struct {
	MaxSize int64
	MaxAge  time.Duration
	// now is the clock, replaced by tests of the age bound.
	now func() time.Time
}

// Store is an open trace store.
type Store struct {
	db   *bolt.DB
	opts Options

	// The writer's side (nil fields when read-only): Add queues under mu,
	// one goroutine writes what queued meanwhile in one transaction under
	// writeMu, so that Add never waits for the disk.
	mu         sync.Mutex
	pending    []state.Span
	maxPending int
	writeMu    sync.Mutex
	wake       chan struct{}
	done       chan struct{}
	stopped    chan struct{}
	size       int64         // bytes of span records held, known to the writer only
	dropped    atomic.Uint64 // since the last Flush, which reports them
	onError    func(error)
}

// meta is a trace's record in bucketTraces.
type meta struct {
	Summary state.TraceSummary `json:"summary"`
	Bytes   int64              `json:"bytes"`   // of its span records
	Arrived int64              `json:"arrived"` // unix nanoseconds of its first span's arrival
}

// Open opens (creating) the store at path for writing; onError hears of
// writes that failed (the spans are lost, the agent goes on). Close flushes.
func Open(path string, opts Options, onError func(error)) (*Store, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("trace store: %w", err)
	}
	// NoFreelistSync: the free list is rebuilt at open instead of written by
	// every commit, which keeps a write to the pages that changed.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open trace store %s: %w", path, err)
	}
	s := &Store{
		db: db, opts: opts, onError: onError, maxPending: defaultMaxPending,
		wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSpans, bucketTraces, bucketOrder} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketTraces).ForEach(func(_, v []byte) error {
			var m meta
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			s.size += m.Bytes
			return nil
		}); err != nil {
			return err
		}
		// Bounds may have shrunk since the last run.
		return s.evict(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open trace store %s: %w", path, err)
	}
	go s.write()
	return s, nil
}

// OpenReadOnly opens the store at path for reading, waiting at most a second
// for a writer's lock; ErrNotFound-free: a missing file is an empty store
// (nil, nil).
func OpenReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("the trace store %s is held by a running agent: ask it instead (is .msctl/agent.json missing?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open trace store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Add queues spans for the writer; it never waits for the disk. Beyond
// maxPending queued spans (100 000) the new ones are dropped and counted.
func (s *Store) Add(spans []state.Span) {
	if len(spans) == 0 {
		return
	}
	s.mu.Lock()
	room := s.maxPending - len(s.pending)
	if room < len(spans) {
		s.dropped.Add(uint64(len(spans) - max(room, 0)))
		spans = spans[:max(room, 0)]
	}
	s.pending = append(s.pending, spans...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush waits until what was added so far is written.
func (s *Store) Flush() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	batch := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(batch) > 0 {
		s.store(batch)
	}
	if n := s.dropped.Swap(0); n > 0 && s.onError != nil {
		s.onError(fmt.Errorf("%d spans dropped: more arrived than the disk took", n))
	}
}

// Close writes what is queued and closes the file.
func (s *Store) Close() error {
	if s.done != nil {
		close(s.done)
		<-s.stopped
		s.Flush()
	}
	return s.db.Close()
}

// evictEvery is how often the writer drops expired traces when nothing
// arrives.
const evictEvery = time.Minute

func (s *Store) write() {
	defer close(s.stopped)
	tick := time.NewTicker(evictEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
			s.Flush()
		case <-tick.C:
			s.writeMu.Lock()
			s.update(s.evict)
			s.writeMu.Unlock()
		}
	}
}

// update runs one write transaction; s.writeMu is held. size follows the
// transaction's changes, so it goes back when the transaction rolls back.
func (s *Store) update(fn func(*bolt.Tx) error) {
	size := s.size
	err := s.db.Update(fn)
	if err != nil {
		s.size = size
		if s.onError != nil {
			s.onError(err)
		}
	}
}

// store writes one batch in one transaction; s.writeMu is held, so that
// Flush returns only once earlier spans are on disk too.
func (s *Store) store(spans []state.Span) {
	byTrace := map[string][]state.Span{}
	for _, sp := range spans {
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
	}
	// Keys go in in order: bbolt splits nodes only at commit, and inserts
	// scattered over a node that grew in this transaction move it each time.
	s.update(func(tx *bolt.Tx) error {
		for _, id := range slices.Sorted(maps.Keys(byTrace)) {
			spans := byTrace[id]
			slices.SortFunc(spans, func(a, b state.Span) int { return strings.Compare(a.SpanID, b.SpanID) })
			if err := s.storeTrace(tx, id, spans); err != nil {
				return err
			}
		}
		return s.evict(tx)
	})
}

func (s *Store) storeTrace(tx *bolt.Tx, id string, spans []state.Span) error {
	sb, tb, ob := tx.Bucket(bucketSpans), tx.Bucket(bucketTraces), tx.Bucket(bucketOrder)
	var m meta
	if v := tb.Get([]byte(id)); v != nil {
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
	} else {
		m.Arrived = s.opts.now().UnixNano()
		if err := ob.Put(orderKey(m.Arrived, id), nil); err != nil {
			return err
		}
	}
	for _, sp := range spans {
		v, err := json.Marshal(sp)
		if err != nil {
			return err
		}
		k := []byte(id + sp.SpanID)
		// An exporter's retry sends a span again: it replaces itself.
		if old := sb.Get(k); old != nil {
			m.Bytes -= int64(len(old))
			s.size -= int64(len(old))
		}
		if err := sb.Put(k, v); err != nil {
			return err
		}
		m.Bytes += int64(len(v))
		s.size += int64(len(v))
	}
	all, err := traceSpans(tx, id)
	if err != nil {
		return err
	}
	m.Summary = Summarize(id, all)
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tb.Put([]byte(id), v)
}

// evict drops the oldest traces while any is older than MaxAge or the
// spans take more than MaxSize.
func (s *Store) evict(tx *bolt.Tx) error {
	c := tx.Bucket(bucketOrder).Cursor()
	horizon := s.opts.now().Add(-s.opts.MaxAge).UnixNano()
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		arrived := int64(binary.BigEndian.Uint64(k[:8]))
		if arrived >= horizon && s.size <= s.opts.MaxSize {
			return nil
		}
		if err := s.remove(tx, string(k[8:])); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes one trace's spans and record (not its order key).
func (s *Store) remove(tx *bolt.Tx, id string) error {
	tb := tx.Bucket(bucketTraces)
	if v := tb.Get([]byte(id)); v != nil {
		var m meta
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		s.size -= m.Bytes
	}
	if err := tb.Delete([]byte(id)); err != nil {
		return err
	}
	c := tx.Bucket(bucketSpans).Cursor()
	prefix := []byte(id)
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func orderKey(arrived int64, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(arrived))
	return append(k, id...)
}

// traceSpans reads one trace's spans, ordered by start.
func traceSpans(tx *bolt.Tx, id string) ([]state.Span, error) {
	var out []state.Span
	c := tx.Bucket(bucketSpans).Cursor()
	prefix := []byte(id)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var sp state.Span
		if err := json.Unmarshal(v, &sp); err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	slices.SortStableFunc(out, func(a, b state.Span) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// Trace returns the spans of one trace, ordered by start; ErrNotFound when
// the store holds none.
func (s *Store) Trace(id string) ([]state.Span, error) {
	var out []state.Span
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = traceSpans(tx, id)
		return err
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%w %s", ErrNotFound, id)
	}
	return out, err
}

// Query selects traces to list.
type Query struct {
	// Service keeps the traces a span of which this service made.
	Service string
	// Since keeps the traces that started at or after it.
	Since time.Time
	// Limit is how many at most; 0 means all.
	Limit int
}

// List summarizes the traces q selects, newest arrival first.
func (s *Store) List(q Query) ([]state.TraceSummary, error) {
	var out []state.TraceSummary
	err := s.db.View(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTraces)
		c := tx.Bucket(bucketOrder).Cursor()
		for k, _ := c.Last(); k != nil && (q.Limit <= 0 || len(out) < q.Limit); k, _ = c.Prev() {
			v := tb.Get(k[8:])
			if v == nil {
				continue
			}
			var m meta
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			sum := m.Summary
			if sum.Start.Before(q.Since) || q.Service != "" && !slices.Contains(sum.Services, q.Service) {
				continue
			}
			out = append(out, sum)
		}
		return nil
	})
	return out, err
}
