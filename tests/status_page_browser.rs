//! The control plane's status page in a real browser: a control plane sampling its edge every
//! second, viewers fetching through the edge (misses, hits, a 404), and headless Chromium
//! opening `/` with the operator token: the page renders the edges table and the three plots
//! with the sampled points, and a screenshot of it is written beside the test's files.

use std::path::Path;
use std::process::Command;

use strata_tests::control::Control;
use strata_tests::*;

/// Chromium's flags for a headless run on this machine (no sandbox as root, no background
/// traffic to the closed network), with a fresh profile.
fn chromium(profile: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1400,1000",
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The value of attribute `attr` on the element with id `id` in a dumped DOM.
fn attribute(dom: &str, id: &str, attr: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    let end = start + dom[start..].find('>')?;
    let tag = &dom[start..end];
    let from = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
    let len = tag[from..].find('"')?;
    Some(tag[from..from + len].to_string())
}

/// The rendered table with `id` (up to its end tag).
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let from = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}: {dom}"));
    let len = dom[from..].find("</table>").unwrap_or(dom.len() - from);
    &dom[from..from + len]
}

#[test]
fn the_status_page_shows_edges_jobs_director_and_plots_of_sampled_traffic_in_a_browser() {
    let dir = TempDir::new("status-page");
    let control = Control::start(&dir.path().join("control"), &["--dashboard-every", "1s"]);
    control.tenant("acme", "east", &[], 0);
    std::fs::create_dir_all(dir.path().join("east")).expect("storage root");
    let _east = control.storage(&dir.path().join("east"), "east", "east-1");
    let edge = control.edge(&dir.path().join("cache"), "edge-1", &["--region", "east"]);
    control.wait_for("servers up", 400, |c| c.is_up("east-1") && c.is_up("edge-1"));
    let src = TempDir::new("status-page-src");
    src.write("clip.mp4", &pattern(3, 400_000));
    let out = control.ingest("acme", "show", src.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Traffic over several samples: whole bodies, ranges and a 404.
    let mut with_egress = 0;
    for round in 0..40 {
        for _ in 0..3 {
            assert_eq!(get(edge.addr, "/acme/show/clip.mp4", &[]).status, 200);
        }
        assert_eq!(
            get(edge.addr, "/acme/show/clip.mp4", &[("Range", "bytes=0-999")]).status,
            206
        );
        assert_eq!(get(edge.addr, "/acme/show/missing.mp4", &[]).status, 404);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let dash = control.op("GET", "/v1/dashboard", None);
        let points = dash["points"].as_array().cloned().unwrap_or_default();
        with_egress = points
            .iter()
            .filter(|p| p["egress_bps"].as_f64().unwrap_or(0.0) > 0.0)
            .count();
        if with_egress >= 3 && round >= 8 {
            break;
        }
    }
    assert!(
        with_egress >= 3,
        "the sampler recorded the edge's traffic: {}",
        control.op("GET", "/v1/dashboard", None)
    );
    let dash = control.op("GET", "/v1/dashboard", None);
    assert!(
        dash["points"]
            .as_array()
            .expect("points")
            .iter()
            .any(|p| p["status_4xx_per_s"].as_f64().unwrap_or(0.0) > 0.0),
        "the 404s show as 4xx: {dash}"
    );
    assert_eq!(dash["edges"][0]["name"], "edge-1", "{dash}");

    // Without a token the data is refused; the page itself carries none.
    let (status, _) = control.call("GET", "/v1/dashboard", None, None);
    assert_eq!(status, 401);
    let (status, page) = strata_tests::control::raw(control.addr, "GET", "/", None, None);
    assert_eq!(status, 200);
    assert!(
        page.contains("<canvas id=\"egress\"") && !page.contains(&control.operator),
        "the page is static"
    );

    // A distribution job to the edge, shown with its progress; the director's row for the edge.
    let job = control.op(
        "POST",
        "/v1/jobs",
        Some(&serde_json::json!({"tenant": "acme", "content": "show", "to": "edge-1", "fanout": 1})),
    );
    let job_id = job["id"].as_str().expect("job id").to_string();
    control.wait_for("the job to finish", 400, |c| {
        c.op("GET", &format!("/v1/jobs/{job_id}"), None)["state"] == "done"
    });
    control.wait_for("the edge's director row", 400, |c| {
        c.op("GET", "/v1/status", None)["director"][0]["edges"][0]["edge"] == "edge-1"
    });

    let url = format!("{}/#token={}", control.url(), control.operator);
    let dom = chromium(&dir.path().join("profile-dom"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium (installed by cargo xtask setup)");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page rendered with data: {dom}"
    );
    for plot in ["egress", "status", "hits"] {
        let points: usize = attribute(&dom, plot, "data-points")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("plot {plot} drew nothing: {dom}"));
        assert!(points >= 3, "plot {plot} has {points} points");
    }
    assert!(
        dom.contains(">edge-1<") && dom.contains(">acme<") && dom.contains(">east-1<"),
        "{dom}"
    );
    let jobs = section(&dom, "jobs");
    assert!(
        jobs.contains(&format!(">{job_id}<")) && jobs.contains(">acme/show<") && jobs.contains(">done<"),
        "the job is listed with its state: {jobs}"
    );
    let director = section(&dom, "director");
    assert!(
        director.contains(">east<") && director.contains(">edge-1<"),
        "the director's table names the region's edge: {director}"
    );

    let shot = std::env::temp_dir().join("strata-status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&dir.path().join("profile-shot"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("chromium screenshot");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "a screenshot with content ({size} bytes): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("status page screenshot: {}", shot.display());
}
