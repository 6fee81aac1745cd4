use super::*;

fn line(t: u64, overflows: i64, queue: u32, cw: u32) -> String {
    let findings = if cw > 0 {
        format!(
            r#"[{{"kind":"close_wait","severity":"warning","count":{cw},"ports":[30020],"pids":[7]}}]"#
        )
    } else {
        "[]".to_string()
    };
    format!(
        r#"{{"t":"2026-11-25T03:00:{t:02}.000Z","t_ms":{},"host":"api-1","netns":"n","total":1,"by_state":{{}},"ports":[],"processes":[],"findings":{findings},"counters":{{"ListenOverflows":{overflows}}},"filter":"port 30020","listeners":[{{"at":"port 30020","queue":{queue},"backlog":16}}]}}"#,
        t * 1000
    )
}

/// The night in its first lines: when the queue filled, how many
/// connections were refused, when it cleared; a counter that went
/// backwards (the namespace made anew) counts from 0, never negative;
/// a missing sample is a gap.
#[test]
fn drops_queues_and_the_story() {
    let rec = [
        line(0, 40, 2, 0),
        line(5, 40, 16, 3),
        line(10, 100, 17, 9),
        line(15, 160, 17, 9),
        line(20, 10, 17, 9),
        line(40, 10, 0, 0),
    ]
    .join("\n");
    let mut b = Builder::default();
    b.read(rec.as_bytes()).expect("read");
    let tl = b.finish();
    let d = &tl.drops[0];
    assert_eq!(d.name, "ListenOverflows");
    assert_eq!(d.values, vec![0, 0, 60, 60, 10, 0], "reset: 10, not -150");
    let q = &tl.queues[0];
    assert_eq!(q.name, "port 30020 accept queue (backlog 16)");
    assert_eq!(q.values, vec![2, 16, 17, 17, 17, 0]);
    assert_eq!(tl.header.hosts, vec!["api-1"]);
    assert_eq!(tl.header.filters, vec!["port 30020"]);
    assert_eq!(tl.header.period_ms, Some(5_000));
    assert_eq!(tl.header.gaps, vec![(5, 20_000)]);
    let story = tl.story.join("\n");
    assert!(
        story.contains(
            "03:00:05 port 30020 accept queue (backlog 16) full (16/16), below it again at 03:00:40"
        ),
        "{story}"
    );
    assert!(
        story.contains("03:00:05–03:00:20 130 ListenOverflows (connections refused or timed out), peak 720/min at 03:00:10"),
        "{story}"
    );
    assert!(
        story.contains("03:00:05 close_wait port 30020 (3), peak 9 at 03:00:10, gone at 03:00:40"),
        "{story}"
    );
}
