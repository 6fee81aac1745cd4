use super::*;

#[test]
fn onset_is_the_start_of_the_rise_to_the_peak() {
    let s = Series::new("x".into(), vec![3, 3, 2, 2, 5, 9, 9, 4]);
    assert_eq!((s.first, s.last, s.peak, s.peak_at), (3, 4, 9, 5));
    assert_eq!(
        s.onset_at,
        Some(4),
        "after the last low point before the peak"
    );
    assert_eq!(Series::new("flat".into(), vec![4, 4, 4]).onset_at, None);
    assert_eq!(Series::new("falling".into(), vec![9, 5, 1]).onset_at, None);
    assert_eq!(
        Series::new("from start".into(), vec![0, 1, 2]).onset_at,
        Some(1)
    );
    assert_eq!(Series::new("empty".into(), vec![]).onset_at, None);
}

#[test]
fn a_recording_of_every_namespace_is_read_round_by_round() {
    // Two rounds of two namespaces: CLOSE_WAIT rises in "b" only.
    let line = |t: u64, ns: &str, cw: u32| {
        format!(
            r#"{{"t":"2026-11-25T03:00:0{t}.000Z","t_ms":{t},"host":"h","netns":"{ns}","total":{cw},"by_state":{{"CLOSE_WAIT":{cw}}},"ports":[{{"port":8000,"direction":"inbound","remote":null,"by_state":{{"CLOSE_WAIT":{cw}}}}}],"processes":[],"findings":[],"counters":{{}}}}"#
        )
    };
    let text = [
        line(1, "a", 1),
        line(1, "b", 2),
        line(2, "a", 1),
        line(2, "b", 6),
    ]
    .join("\n");
    let mut b = Builder::default();
    b.read(text.as_bytes()).expect("read");
    let tl = b.finish();
    assert_eq!(tl.times.len(), 2, "two rounds, not four samples");
    let cw = tl
        .states
        .iter()
        .find(|s| s.name == "CLOSE_WAIT")
        .expect("state");
    assert_eq!(cw.values, [3, 7], "the states add up over the namespaces");
    let names: Vec<String> = tl.ports.iter().map(Series::label).collect();
    assert_eq!(names, ["b: inbound port 8000 CLOSE_WAIT"], "only b's rose");
    assert_eq!(tl.ports[0].netns.as_deref(), Some("b"));
    assert_eq!(tl.ports[0].values, [2, 6]);
}

#[test]
fn torn_and_garbage_lines_are_counted() {
    let good = r#"{"t":"2026-11-25T03:00:00.000Z","t_ms":1,"host":"h","netns":"n","total":1,"by_state":{"LISTEN":1},"ports":[],"processes":[],"findings":[],"counters":{}}"#;
    let later = good.replace(r#""t_ms":1"#, r#""t_ms":2"#);
    let text = format!("{good}\n{later}\ngarbage\n{}", &good[..40]);
    let mut b = Builder::default();
    b.read(text.as_bytes()).expect("read");
    assert_eq!((b.rounds(), b.bad_lines), (2, 2));
    let tl = b.finish();
    assert_eq!(tl.states[0].values, [1, 1]);
}

/// A span (values from the first round seen, zeros around) says what
/// the whole series says: checked against the dense computation on
/// many shapes.
#[test]
fn a_span_summarises_as_the_whole_series_would() {
    fn dense(values: &[u32]) -> (u32, u32, u32, usize, Option<usize>) {
        let first = values.first().copied().unwrap_or(0);
        let last = values.last().copied().unwrap_or(0);
        let (peak_at, peak) = values
            .iter()
            .copied()
            .enumerate()
            .fold((0, 0), |b, (i, v)| if v > b.1 { (i, v) } else { b });
        let low = values.iter().take(peak_at + 1).copied().min().unwrap_or(0);
        let onset = (peak > low).then(|| {
            values[..peak_at]
                .iter()
                .rposition(|&v| v == low)
                .map_or(0, |i| i + 1)
        });
        (first, last, peak, peak_at, onset)
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for _ in 0..5000 {
        let n = next(12) as usize;
        let mut span = Span::default();
        let mut whole = vec![0u32; n];
        if n > 0 {
            let start = next(n as u64) as usize;
            let len = 1 + next((n - start) as u64) as usize;
            for (i, w) in whole.iter_mut().enumerate().skip(start).take(len) {
                let v = next(4) as u32;
                span.add(i, v);
                *w = v;
            }
        }
        let s = span.series("x".into(), n);
        assert_eq!(s.values, whole);
        assert_eq!(
            (s.first, s.last, s.peak, s.peak_at, s.onset_at),
            dense(&whole),
            "{whole:?}"
        );
    }
    let mut big = Span::default();
    big.add(0, u32::MAX);
    big.add(0, 5);
    assert_eq!(big.at(0), u32::MAX, "sums saturate");
}
