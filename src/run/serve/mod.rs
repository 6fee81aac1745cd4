//! `zombiescan serve`: the Prometheus exporter.
//!
//! HTTP/1.1 is served by hyper on a tokio runtime of one thread: a
//! connection costs a task and its buffers, never a thread, so clients
//! that open connections and send nothing cost little, and they are
//! bounded besides: at most `--max-connections` at once (`slots`), a
//! request (and the TLS handshake before it) must arrive within
//! [`REQUEST_TIMEOUT`] of its connection or of the previous response, and
//! headers are bounded in size. The scans run on a thread of their own
//! (`scans`); bcrypt, slow by design, on at most one more. `--web-config`
//! adds TLS, basic authentication, headers and a rate limit (`web`), read
//! again on SIGHUP.

mod scans;
mod slots;
mod web;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::STOP;
use crate::config::Config;
use crate::error::{self, Outcome, RunError};
use crate::render::prometheus;
use slots::{Slot, Slots};
use web::Web;

/// How long a connection may take to send a whole request: from its
/// opening (the TLS handshake included) or from the previous response.
/// It bounds keep-alive too: a connection idle this long is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes of request headers read (hyper's smallest bound).
const MAX_HEADERS: usize = 8192;

/// Set by SIGHUP: read the web config again.
static RELOAD: AtomicBool = AtomicBool::new(false);

pub struct Options {
    pub listen: SocketAddr,
    pub scrape_timeout: Duration,
    pub web_config: Option<PathBuf>,
    pub max_connections: usize,
}

/// What every connection shares.
struct Ctx {
    scans: Arc<scans::Shared>,
    web: RwLock<Arc<Web>>,
    timeout: Duration,
    slots: Arc<Slots>,
    /// When a refused connection was last logged.
    refused_logged: Mutex<Option<Instant>>,
}

impl Ctx {
    fn web(&self) -> Arc<Web> {
        Arc::clone(&self.web.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Serves until SIGTERM or SIGINT.
pub fn run(cfg: &Config, opts: &Options) -> Result<Outcome, RunError> {
    let web_config = opts.web_config.as_deref();
    let first = match web_config {
        Some(p) => Web::load(p),
        None => Ok(Web::none()),
    }
    .map_err(|detail| {
        let file = web_config.unwrap_or(std::path::Path::new(""));
        error::Error::malformed(format!("--web-config {}", file.display()), detail)
    })?;
    let listen_error = |e: std::io::Error| error::Error::Listen {
        addr: opts.listen.to_string(),
        reason: e.to_string(),
    };
    let listener = std::net::TcpListener::bind(opts.listen).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let bound = listener.local_addr().unwrap_or(opts.listen);
    let scheme = if first.tls.is_some() { "https" } else { "http" };
    let auth = if first.users.is_some() {
        ", basic authentication"
    } else {
        ""
    };
    log(&format!(
        "serving {scheme}://{bound}/metrics (at most {} connections{auth})",
        opts.max_connections
    ));
    reload_on_sighup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        // bcrypt, one at a time, as exporter-toolkit does.
        .max_blocking_threads(1)
        .build()
        .map_err(listen_error)?;
    let ctx = Arc::new(Ctx {
        scans: Arc::new(scans::Shared::default()),
        web: RwLock::new(Arc::new(first)),
        timeout: opts.scrape_timeout,
        slots: Slots::new(opts.max_connections),
        refused_logged: Mutex::new(None),
    });
    let served = std::thread::scope(|s| {
        let scans = Arc::clone(&ctx.scans);
        s.spawn(move || scans::scanner(cfg, &scans));
        let served = runtime.block_on(accept(listener, &ctx, web_config));
        ctx.scans.stop();
        served
    });
    // Connections still open end with the runtime.
    drop(runtime);
    served.map_err(listen_error)?;
    log("stopped");
    Ok(Outcome {
        failed: false,
        notice: None,
    })
}

fn reload_on_sighup() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn reload(_: nix::libc::c_int) {
        RELOAD.store(true, Ordering::Relaxed);
    }
    let action = SigAction::new(
        SigHandler::Handler(reload),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    let _ = unsafe { sigaction(Signal::SIGHUP, &action) };
}

/// Accepts connections until STOP; reads the web config again on SIGHUP.
async fn accept(
    listener: std::net::TcpListener,
    ctx: &Arc<Ctx>,
    web_config: Option<&std::path::Path>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => admit(stream, ctx),
                Err(e) => {
                    // Out of descriptors, most likely: let connections end.
                    log(&format!("cannot accept a connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = tick.tick() => {
                if STOP.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if RELOAD.swap(false, Ordering::Relaxed) {
                    reload(ctx, web_config);
                }
            }
        }
    }
}

fn reload(ctx: &Ctx, web_config: Option<&std::path::Path>) {
    let Some(path) = web_config else {
        log("SIGHUP: no --web-config to read again");
        return;
    };
    match Web::load(path) {
        Ok(web) => {
            *ctx.web.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(web);
            log(&format!("read {} again", path.display()));
        }
        Err(e) => log(&format!(
            "{} unchanged: cannot read it again ({e}); serving with the configuration read before",
            path.display()
        )),
    }
}

fn admit(stream: tokio::net::TcpStream, ctx: &Arc<Ctx>) {
    let Some(slot) = ctx.slots.admit() else {
        // Every connection is waiting for a scan: this one is closed.
        let mut last = ctx.refused_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            *last = Some(Instant::now());
            log("every connection is busy (--max-connections): refusing new ones");
        }
        return;
    };
    let _ = stream.set_nodelay(true);
    let web = ctx.web();
    let ctx = Arc::clone(ctx);
    tokio::spawn(async move {
        tokio::select! {
            () = slot.closed() => {}
            () = connection(stream, web, ctx, slot.clone()) => {}
        }
    });
}

async fn connection(stream: tokio::net::TcpStream, web: Arc<Web>, ctx: Arc<Ctx>, slot: Slot) {
    match &web.tls {
        Some(tls) => {
            let Ok(Ok(stream)) = tokio::time::timeout(REQUEST_TIMEOUT, tls.accept(stream)).await
            else {
                return;
            };
            http(TokioIo::new(stream), web, ctx, slot).await;
        }
        None => http(TokioIo::new(stream), web, ctx, slot).await,
    }
}

async fn http<I>(io: I, web: Arc<Web>, ctx: Arc<Ctx>, slot: Slot)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let (web, ctx, slot) = (Arc::clone(&web), Arc::clone(&ctx), slot.clone());
        async move { Ok::<_, Infallible>(answer(req, &web, &ctx, &slot).await) }
    });
    // A client that goes away, or sends what is not HTTP, is no error of
    // ours.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_buf_size(MAX_HEADERS)
        .serve_connection(io, service)
        .await;
}

type Answer = Response<Full<Bytes>>;

async fn answer(req: Request<Incoming>, web: &Arc<Web>, ctx: &Ctx, slot: &Slot) -> Answer {
    let mut r = route(req, web, ctx, slot).await;
    for (k, v) in &web.headers {
        r.headers_mut().insert(k.clone(), v.clone());
    }
    r
}

async fn route(req: Request<Incoming>, web: &Arc<Web>, ctx: &Ctx, slot: &Slot) -> Answer {
    if web.limit.as_ref().is_some_and(|l| !l.allow()) {
        return page(429, "text/plain; charset=utf-8", "Too Many Requests\n");
    }
    if let Some(users) = &web.users
        && !authorized(&req, users).await
    {
        let mut r = page(401, "text/plain; charset=utf-8", "Unauthorized\n");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        return r;
    }
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let _busy = slot.busy();
            metrics(&req, ctx).await
        }
        (&Method::GET | &Method::HEAD, "/") => page(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html>\n<html><head><title>zombiescan exporter</title></head>\n\
             <body><h1>zombiescan exporter</h1>\n\
             <p>TCP connection states, zombie connections and descriptor limits, \
             per port and process.</p>\n\
             <p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n",
        ),
        (&Method::GET | &Method::HEAD, _) => page(
            404,
            "text/plain; charset=utf-8",
            "not found: GET /metrics\n",
        ),
        _ => page(
            405,
            "text/plain; charset=utf-8",
            "method not allowed: GET /metrics\n",
        ),
    }
}

/// Basic credentials that match `basic_auth_users`: an answer remembered,
/// else bcrypt's, computed off the serving thread.
async fn authorized(req: &Request<Incoming>, users: &Arc<web::Users>) -> bool {
    let Some((user, password)) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| web::basic_credentials(v.as_bytes()))
    else {
        return false;
    };
    if users.remembered(&user, &password) {
        return true;
    }
    let users = Arc::clone(users);
    tokio::task::spawn_blocking(move || users.check(&user, &password))
        .await
        .unwrap_or(false)
}

fn page(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// How long a scrape may wait: ours, or a little less than Prometheus's.
fn deadline(req: &Request<Incoming>, timeout: Duration) -> Duration {
    let theirs = req
        .headers()
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        // Time to encode and send.
        .map(|t| Duration::from_secs_f64((t * 0.8).min(86_400.0)));
    theirs.map_or(timeout, |t| t.min(timeout))
}

async fn metrics(req: &Request<Incoming>, ctx: &Ctx) -> Answer {
    match scans::fetch(&ctx.scans, deadline(req, ctx.timeout)).await {
        Some((text, scrape)) => {
            let mut body = String::with_capacity(text.len() + 1024);
            body.push_str(&text);
            body.push_str(&prometheus::encode_scrape(&scrape));
            page(200, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        None => page(
            503,
            "text/plain; charset=utf-8",
            "the first scan has not completed yet: try again\n",
        ),
    }
}

/// One line on stderr, escaped as any text from outside (an error can
/// quote a path or a name).
fn log(msg: &str) {
    eprintln!(
        "zombiescan serve: {}",
        crate::render::sanitize::terminal(msg.as_bytes())
    );
}
