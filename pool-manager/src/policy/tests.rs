use super::*;

const SEC: Duration = Duration::from_secs(1);

fn dynamic(min_spare: u32, max_spare: u32, max: u32) -> Sizing {
    Sizing::Dynamic {
        start: 1,
        min_spare,
        max_spare,
        max,
    }
}

fn ondemand(max: u32) -> Sizing {
    Sizing::OnDemand {
        max,
        idle_timeout: Duration::from_secs(10),
    }
}

fn snap(active: u32, idle_slots: u32, waiting: u32, idle: &[(WorkerId, u64)]) -> Snapshot {
    Snapshot {
        active,
        unreported: 0,
        idle_slots,
        waiting,
        idle_workers: idle.iter().map(|&(w, s)| (w, SEC * s as u32)).collect(),
    }
}

/// (name, sizing, slots, snapshot, tick, expected actions)
type Case = (&'static str, Sizing, u32, Snapshot, bool, Vec<Action>);

#[test]
fn table() {
    let cases: Vec<Case> = vec![
        (
            "static fills up",
            Sizing::Static { workers: 4 },
            1,
            snap(1, 1, 0, &[]),
            true,
            vec![Action::Spawn(3)],
        ),
        (
            "static at size does nothing",
            Sizing::Static { workers: 4 },
            1,
            snap(4, 4, 0, &[(1, 99)]),
            true,
            vec![],
        ),
        (
            "static never exceeds",
            Sizing::Static { workers: 2 },
            1,
            snap(2, 0, 50, &[]),
            false,
            vec![],
        ),
        (
            "dynamic below min spare ramps from 1",
            dynamic(5, 10, 20),
            1,
            snap(1, 0, 0, &[]),
            true,
            vec![Action::Spawn(1)],
        ),
        (
            "dynamic does not ramp between ticks",
            dynamic(5, 10, 20),
            1,
            snap(1, 0, 0, &[]),
            false,
            vec![],
        ),
        (
            "dynamic queue pressure spawns at once",
            dynamic(1, 3, 20),
            1,
            snap(2, 0, 6, &[]),
            false,
            vec![Action::Spawn(6)],
        ),
        (
            "dynamic pressure capped at max",
            dynamic(1, 3, 5),
            1,
            snap(2, 0, 6, &[]),
            false,
            vec![Action::MaxReached, Action::Spawn(3)],
        ),
        (
            "dynamic above max spare retires longest idle",
            dynamic(1, 3, 20),
            1,
            snap(6, 5, 0, &[(7, 30), (8, 2)]),
            true,
            vec![Action::Retire(7)],
        ),
        (
            "dynamic retires only on ticks",
            dynamic(1, 3, 20),
            1,
            snap(6, 5, 0, &[(7, 30)]),
            false,
            vec![],
        ),
        (
            "dynamic keeps spare within bounds",
            dynamic(1, 3, 20),
            1,
            snap(6, 3, 0, &[(7, 30)]),
            true,
            vec![],
        ),
        (
            "threaded counts slots",
            dynamic(8, 24, 10),
            8,
            snap(1, 8, 0, &[]),
            true,
            vec![],
        ),
        (
            "threaded shortfall in workers",
            dynamic(16, 24, 10),
            8,
            snap(1, 0, 0, &[]),
            true,
            vec![Action::Spawn(1)],
        ),
        (
            "threaded pressure rounds up",
            dynamic(8, 24, 10),
            8,
            snap(2, 0, 9, &[]),
            false,
            vec![Action::Spawn(2)],
        ),
        (
            "ondemand starts nothing idle",
            ondemand(8),
            1,
            snap(0, 0, 0, &[]),
            true,
            vec![],
        ),
        (
            "ondemand spawns for the queue",
            ondemand(64),
            1,
            snap(0, 0, 32, &[]),
            false,
            vec![Action::Spawn(32)],
        ),
        (
            "ondemand counts unreported workers",
            ondemand(64),
            1,
            Snapshot {
                unreported: 30,
                ..snap(30, 0, 32, &[])
            },
            false,
            vec![Action::Spawn(2)],
        ),
        (
            "ondemand retires after idle timeout",
            ondemand(8),
            1,
            snap(3, 3, 0, &[(4, 12), (5, 11)]),
            true,
            vec![Action::Retire(4)],
        ),
        (
            "ondemand keeps recently used",
            ondemand(8),
            1,
            snap(3, 3, 0, &[(4, 9)]),
            true,
            vec![],
        ),
        (
            "no retiring while requests wait",
            ondemand(2),
            1,
            snap(2, 0, 3, &[(4, 60)]),
            true,
            vec![Action::MaxReached],
        ),
    ];
    for (name, sizing, slots, snapshot, tick, expected) in cases {
        let mut ramp = Ramp::default();
        let actions = plan(&sizing, slots, 32, &snapshot, &mut ramp, tick);
        assert_eq!(actions, expected, "{name}");
    }
}

#[test]
fn ramp_doubles_per_tick_up_to_the_rate_and_resets() {
    let sizing = dynamic(100, 200, 1000);
    let mut ramp = Ramp::default();
    let mut spawned = Vec::new();
    let mut active = 0;
    for _ in 0..7 {
        let actions = plan(
            &sizing,
            1,
            32,
            &snap(active, active, 0, &[]),
            &mut ramp,
            true,
        );
        let Some(Action::Spawn(n)) = actions.first() else {
            panic!("{actions:?}")
        };
        spawned.push(*n);
        active += n;
    }
    assert_eq!(spawned, [1, 2, 4, 8, 16, 32, 32]);
    // Satisfied: the ramp starts over.
    let _ = plan(&sizing, 1, 32, &snap(150, 150, 0, &[]), &mut ramp, true);
    assert_eq!(ramp.next, 1);
}

#[test]
fn max_reached_is_reported_once_per_episode() {
    let sizing = ondemand(2);
    let mut ramp = Ramp::default();
    let busy = snap(2, 0, 5, &[]);
    assert_eq!(
        plan(&sizing, 1, 32, &busy, &mut ramp, false),
        [Action::MaxReached]
    );
    assert_eq!(plan(&sizing, 1, 32, &busy, &mut ramp, false), []);
    let _ = plan(&sizing, 1, 32, &snap(2, 2, 0, &[]), &mut ramp, true);
    assert_eq!(
        plan(&sizing, 1, 32, &busy, &mut ramp, false),
        [Action::MaxReached]
    );
}
