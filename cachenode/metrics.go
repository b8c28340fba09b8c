package cachenode

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ferryio/ferry/cachenode/pagestore"
)

// registerCacheMetrics exports the page store's counters. They are read
// from the store when metrics are collected, so the read path pays nothing
// for them.
func registerCacheMetrics(m metric.Meter, nodeID string, store *pagestore.Store) (metric.Registration, error) {
	counter := func(name, desc string) (metric.Int64ObservableCounter, error) {
		return m.Int64ObservableCounter(name, metric.WithDescription(desc))
	}
	gauge := func(name, desc string) (metric.Int64ObservableGauge, error) {
		return m.Int64ObservableGauge(name, metric.WithDescription(desc))
	}
	var err error
	var c [7]metric.Int64ObservableCounter
	var g [3]metric.Int64ObservableGauge
	for i, d := range [][2]string{
		{"ferry_cache_hits", "Pages served from the cache."},
		{"ferry_cache_misses", "Pages fetched from storage for a read."},
		{"ferry_cache_bytes_served", "Bytes returned to readers."},
		{"ferry_cache_bytes_read_from_storage", "Bytes read from storage systems (reads and loads)."},
		{"ferry_cache_pages_stored", "Pages written to the cache."},
		{"ferry_cache_pages_evicted", "Pages evicted to stay within capacity."},
		{"ferry_cache_pages_corrupt", "Pages that failed their checksum and were read again."},
	} {
		if c[i], err = counter(d[0], d[1]); err != nil {
			return nil, err
		}
	}
	for i, d := range [][2]string{
		{"ferry_cache_capacity_used_bytes", "Bytes of cached pages."},
		{"ferry_cache_capacity_bytes", "Capacity of the cache in bytes."},
		{"ferry_cache_pages", "Pages in the cache."},
	} {
		if g[i], err = gauge(d[0], d[1]); err != nil {
			return nil, err
		}
	}
	node := metric.WithAttributes(attribute.String("node", nodeID))
	obs := make([]metric.Observable, 0, len(c)+len(g))
	for _, x := range c {
		obs = append(obs, x)
	}
	for _, x := range g {
		obs = append(obs, x)
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := store.Stats()
		for i, v := range []int64{s.Hits, s.Misses, s.BytesServed, s.BytesFromStorage, s.PagesStored, s.PagesEvicted, s.PagesCorrupt} {
			o.ObserveInt64(c[i], v, node)
		}
		for i, v := range []int64{s.UsedBytes, s.Capacity, s.Pages} {
			o.ObserveInt64(g[i], v, node)
		}
		return nil
	}, obs...)
}
