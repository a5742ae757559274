//! Thread safety made visible: 64 concurrent clients on the Flask app in 2 processes × 8 threads
//! each get their own answer (a tag and cookie they sent, and a digest computed from it), and the
//! slot accounting on `/status` and in the metrics matches the requests in flight.

use std::sync::atomic::{AtomicU64, Ordering};

use harness::client::{get_in_background, Connection};
use harness::observe::{scrape, value};

use harness::wsgi::WsgiServer;

use crate::support::{flask_site, flask_site_on, json, THREADS, WORKERS};

const CLIENTS: usize = 64;
const REQUESTS_PER_CLIENT: u64 = 8;

/// What the app computes for `tag`: SHA-1 of the tag, then 200 more rounds over the hex digest.
fn digest(tag: &str) -> String {
    let mut digest = sha1_smol::Sha1::from(tag).digest().to_string();
    for _ in 0..200 {
        digest = sha1_smol::Sha1::from(&digest).digest().to_string();
    }
    digest
}

#[test]
fn sixty_four_clients_never_get_each_others_answers() {
    never_mixed_up(WsgiServer::Flup);
}

/// The same over HTTP, where each slot's connection to its uWSGI thread carries request after
/// request: an answer read short or long would shift every later one onto the wrong client.
#[test]
fn sixty_four_clients_never_get_each_others_answers_over_http() {
    never_mixed_up(WsgiServer::UwsgiHttp);
}

#[test]
fn sixty_four_clients_never_get_each_others_answers_from_granian() {
    never_mixed_up(WsgiServer::Granian);
}

#[test]
fn sixty_four_clients_never_get_each_others_answers_from_paddocks_wsgi_worker() {
    never_mixed_up(WsgiServer::Paddock);
}

fn never_mixed_up(server: WsgiServer) {
    let Some(site) = flask_site_on(server, "") else {
        return;
    };
    let addr = site.paddock.http;
    let answered = AtomicU64::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (answered, failures) = (&answered, &failures);
            scope.spawn(move || {
                let mut connection = None;
                for n in 0..REQUESTS_PER_CLIENT {
                    let tag = format!("client{client}-request{n}");
                    let conn = match &mut connection {
                        Some(conn) => conn,
                        None => match Connection::open(addr) {
                            Ok(conn) => connection.insert(conn),
                            Err(e) => {
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("{tag}: connect: {e}"));
                                continue;
                            }
                        },
                    };
                    let cookie = format!("who={tag}");
                    let path = format!("/api/whoami?tag={tag}");
                    let problem = match conn.request("GET", &path, &[("Cookie", &cookie)], b"") {
                        Ok(r) if r.status == 200 => {
                            let body = json(&r.text());
                            let mine = body["tag"] == tag.as_str()
                                && body["cookie"] == tag.as_str()
                                && body["digest"] == digest(&tag).as_str();
                            (!mine).then(|| format!("{tag}: someone else's answer: {body}"))
                        }
                        Ok(r) => Some(format!("{tag}: {} {}", r.status, r.text())),
                        Err(e) => Some(format!("{tag}: {e}")),
                    };
                    match problem {
                        None => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(problem) => {
                            failures.lock().unwrap().push(problem);
                            connection = None;
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        site.paddock.log()
    );
    assert_eq!(
        answered.load(Ordering::Relaxed),
        CLIENTS as u64 * REQUESTS_PER_CLIENT
    );
    // Both processes served: the work was spread over threads of both.
    let pool = site.paddock.pool_status("flask");
    let processes = pool["processes"].as_array().unwrap();
    assert_eq!(processes.len(), WORKERS as usize, "{pool}");
    assert!(
        processes
            .iter()
            .all(|p| p["requests_served"].as_u64() > Some(0)),
        "{pool}"
    );
}

/// Eleven requests held in the app (more than one process's threads): `/status` counts eleven
/// busy slots, spread over both processes, each listing its running requests; the busy-slots
/// gauge says the same; once released, every slot is free again and every request answered.
#[test]
fn busy_slots_on_status_and_in_metrics_match_the_requests_in_flight() {
    let Some(site) = flask_site("") else {
        return;
    };
    let paddock = &site.paddock;
    const HELD: usize = 11;
    let release = site.scratch.path().join("release");
    let path = format!("/slow?until={}", release.display());
    let held: Vec<_> = (0..HELD)
        .map(|_| get_in_background(paddock.http, &path))
        .collect();
    let pool = paddock.wait_pool("flask", "eleven busy slots", |p| p["busy_slots"] == HELD);
    let processes = pool["processes"].as_array().unwrap();
    let per_process: Vec<u64> = processes
        .iter()
        .map(|p| p["busy_slots"].as_u64().unwrap())
        .collect();
    assert_eq!(per_process.iter().sum::<u64>(), HELD as u64, "{pool}");
    assert!(
        per_process.iter().all(|&busy| busy <= THREADS as u64) && per_process.len() == 2,
        "no process runs more than its threads: {pool}"
    );
    let running: usize = processes
        .iter()
        .map(|p| {
            p["current"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["path"] == "/slow")
                .count()
        })
        .sum();
    assert_eq!(running, HELD, "{pool}");
    assert_eq!(
        pool["idle_slots"],
        (WORKERS * THREADS) as usize - HELD,
        "{pool}"
    );
    let metrics = scrape(paddock.admin);
    assert_eq!(
        value(&metrics, "paddock_pool_busy_slots", &[("pool", "flask")]),
        HELD as f64
    );

    std::fs::write(&release, b"").unwrap();
    for request in held {
        let response = request.join().unwrap().expect("an answer");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    paddock.wait_pool("flask", "every slot free", |p| p["busy_slots"] == 0);
    harness::wait_until("the busy-slots gauge back to 0", || {
        value(
            &scrape(paddock.admin),
            "paddock_pool_busy_slots",
            &[("pool", "flask")],
        ) == 0.0
    });
}
