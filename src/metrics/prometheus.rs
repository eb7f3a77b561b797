//! A [`ServerMetrics`] snapshot in Prometheus's text format (version
//! 0.0.4), written by `prometheus-client`'s encoder from a collector that
//! reads the snapshot: names, labels, escaping and the histogram layout
//! are the Prometheus client's, not hand-made.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use wharf_transport::metrics::{Histogram, LoopStats, ServerMetrics};

/// The `Content-Type` of what [`render`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `metrics` in Prometheus's text format, every name prefixed `wharf_`
/// (the series are listed in the [module docs](crate::metrics)).
pub fn render(metrics: &ServerMetrics) -> String {
    let mut registry = Registry::with_prefix("wharf");
    registry.register_collector(Box::new(Snapshot(metrics.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// A snapshot, encoded when the registry is.
#[derive(Debug)]
struct Snapshot(ServerMetrics);

/// The loop counters: name, help, and how to read it from a snapshot.
type Field = (&'static str, &'static str, fn(&LoopStats) -> u64);

const LOOP_COUNTERS: &[Field] = &[
    ("polls", "epoll_wait calls.", |s| s.polls),
    ("events", "Readiness events returned.", |s| s.events),
    ("reads", "read calls on connections.", |s| s.reads),
    ("read_bytes", "Bytes read.", |s| s.bytes_read),
    ("writes", "Gathering write calls.", |s| s.writes),
    ("written_bytes", "Bytes written.", |s| s.bytes_written),
    ("epoll_ctl", "epoll_ctl calls after registration.", |s| {
        s.epoll_ctl
    }),
    ("accepts", "Connections accepted.", |s| s.accepts),
    ("tasks", "Tasks run from the loop's queue.", |s| s.tasks),
    ("timers", "Timers fired.", |s| s.timers),
    ("wakeups", "Times another thread woke the loop.", |s| {
        s.wakeups
    }),
    (
        "shutdown_aborts",
        "Connections a shutdown deadline cut off.",
        |s| s.shutdown_aborts,
    ),
    (
        "connections_opened",
        "Connections that became channels on the loop.",
        |s| s.connections_opened,
    ),
    ("connections_closed", "Channels that closed.", |s| {
        s.connections_closed
    }),
    (
        "connections_refused",
        "Connections closed on accept for the connection limit.",
        |s| s.connections_refused,
    ),
    (
        "accept_backoffs",
        "Times accepting paused for want of descriptors.",
        |s| s.accept_backoffs,
    ),
    ("messages_decoded", "Messages the codecs decoded.", |s| {
        s.messages_decoded
    }),
    (
        "writability_flips",
        "Writability changes the handlers were told of.",
        |s| s.writability_flips,
    ),
    (
        "backpressure_pauses",
        "Times an unwritable channel stopped reading (backpressure).",
        |s| s.backpressure_pauses,
    ),
    (
        "received_bytes",
        "Bytes of input received into files around the pipelines.",
        |s| s.received_bytes,
    ),
    (
        "receive_splices",
        "splice calls of receives from pipes into files.",
        |s| s.receive_splices,
    ),
    (
        "receive_writes",
        "pwrite calls of receives into files (the copy path).",
        |s| s.receive_writes,
    ),
];

/// The buckets a duration histogram is exposed with: 2^7 ns (128 ns) to
/// 2^34 ns (17 s), in seconds.
const SECONDS: std::ops::RangeInclusive<usize> = 7..=34;
/// The buckets of the events-per-poll histogram: 1 to 1024.
const EVENTS: std::ops::RangeInclusive<usize> = 0..=10;

/// `h`'s buckets `range` as (upper bound × `scale`, count) pairs, the
/// first one holding everything below it too (the encoder adds `+Inf`).
fn buckets(h: &Histogram, range: std::ops::RangeInclusive<usize>, scale: f64) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(range.clone().count());
    let mut below = 0;
    for k in range {
        let bound = Histogram::bucket_bound(k);
        let at_most = h.count_at_most(bound);
        out.push((bound as f64 * scale, at_most - below));
        below = at_most;
    }
    out
}

fn encode_histogram(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, String)],
    h: &Histogram,
    range: std::ops::RangeInclusive<usize>,
    scale: f64,
) -> fmt::Result {
    let buckets = buckets(h, range, scale);
    encoder
        .encode_family(&labels)?
        .encode_histogram::<NoLabelSet>(h.sum() as f64 * scale, h.count(), &buckets, None)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let m = &self.0;
        let gauge = MetricType::Gauge;
        encoder
            .encode_descriptor("connections", "Connections open now.", None, gauge)?
            .encode_gauge(&m.connections)?;
        if let Some(max) = m.max_connections {
            encoder
                .encode_descriptor("max_connections", "The connection limit.", None, gauge)?
                .encode_gauge(&(max as u64))?;
        }
        let loops: Vec<[(&str, String); 1]> = m
            .loops
            .iter()
            .map(|l| [("loop", l.id.map_or_else(String::new, |id| id.to_string()))])
            .collect();
        let mut e = encoder.encode_descriptor(
            "loop_connections",
            "Channels open on the loop.",
            None,
            gauge,
        )?;
        for (l, labels) in m.loops.iter().zip(&loops) {
            e.encode_family(labels)?.encode_gauge(&l.connections)?;
        }
        let mut e = encoder.encode_descriptor(
            "outbound_queued",
            "Bytes waiting in the loop's outbound queues.",
            Some(&Unit::Bytes),
            gauge,
        )?;
        for (l, labels) in m.loops.iter().zip(&loops) {
            e.encode_family(labels)?.encode_gauge(&l.outbound_queued)?;
        }
        for (name, help, read) in LOOP_COUNTERS {
            let mut e = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (l, labels) in m.loops.iter().zip(&loops) {
                e.encode_family(labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&read(&l.stats), None)?;
            }
        }
        let histogram = MetricType::Histogram;
        let mut e = encoder.encode_descriptor(
            "events_per_poll",
            "Readiness events per epoll_wait.",
            None,
            histogram,
        )?;
        for (l, labels) in m.loops.iter().zip(&loops) {
            encode_histogram(&mut e, labels, &l.events_per_poll, EVENTS, 1.0)?;
        }
        let seconds = Some(&Unit::Seconds);
        let mut e = encoder.encode_descriptor(
            "handler",
            "Time a pipeline callback took on the loop (sampled).",
            seconds,
            histogram,
        )?;
        for (l, labels) in m.loops.iter().zip(&loops) {
            encode_histogram(&mut e, labels, &l.handler_time, SECONDS, 1e-9)?;
        }
        let mut e = encoder.encode_descriptor(
            "loop_lag",
            "Time from epoll_wait's return to the end of the iteration.",
            seconds,
            histogram,
        )?;
        for (l, labels) in m.loops.iter().zip(&loops) {
            encode_histogram(&mut e, labels, &l.loop_lag, SECONDS, 1e-9)?;
        }
        if !m.workers.is_empty() {
            let workers: Vec<[(&str, String); 1]> = m
                .workers
                .iter()
                .map(|w| [("worker", w.index.to_string())])
                .collect();
            let mut e = encoder.encode_descriptor(
                "worker_tasks",
                "Handler tasks a worker ran.",
                None,
                MetricType::Counter,
            )?;
            for (w, labels) in m.workers.iter().zip(&workers) {
                e.encode_family(labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&w.tasks, None)?;
            }
            let mut e = encoder.encode_descriptor(
                "worker_handler",
                "Time a worker's handler task took (sampled).",
                seconds,
                histogram,
            )?;
            for (w, labels) in m.workers.iter().zip(&workers) {
                encode_histogram(&mut e, labels, &w.handler_time, SECONDS, 1e-9)?;
            }
        }
        encode_allocator(&mut encoder, &m.allocator)
    }
}

fn encode_allocator(
    encoder: &mut DescriptorEncoder<'_>,
    a: &wharf_transport::metrics::AllocatorMetrics,
) -> fmt::Result {
    let counters: [(&str, &str, u64); 7] = [
        ("allocator_chunks_mapped", "Chunks mapped.", a.chunks_mapped),
        (
            "allocator_chunks_unmapped",
            "Chunks unmapped.",
            a.chunks_unmapped,
        ),
        ("allocator_allocations", "Allocations.", a.allocations),
        ("allocator_frees", "Frees.", a.frees),
        ("allocator_cache_hits", "Thread-cache hits.", a.cache_hits),
        (
            "allocator_cache_misses",
            "Thread-cache misses.",
            a.cache_misses,
        ),
        (
            "allocator_cross_thread_returns",
            "Blocks freed on another thread than their owner's.",
            a.cross_thread_returns,
        ),
    ];
    for (name, help, value) in counters {
        encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    let gauges: [(&str, &str, Option<&Unit>, u64); 5] = [
        (
            "allocator_mapped",
            "Bytes mapped.",
            Some(&Unit::Bytes),
            a.bytes_mapped,
        ),
        (
            "allocator_in_use",
            "Bytes in buffers now.",
            Some(&Unit::Bytes),
            a.bytes_in_use,
        ),
        (
            "allocator_huge_live",
            "Buffers with a mapping of their own.",
            None,
            a.huge_live,
        ),
        (
            "allocator_pending_returns",
            "Blocks waiting in return queues.",
            None,
            a.pending_returns,
        ),
        (
            "allocator_thread_caches",
            "Thread caches alive.",
            None,
            a.thread_caches,
        ),
    ];
    for (name, help, unit, value) in gauges {
        encoder
            .encode_descriptor(name, help, unit, MetricType::Gauge)?
            .encode_gauge(&value)?;
    }
    Ok(())
}
