//! What every request shares: the models (loaded once, in the background), the
//! audit store, the queue in front of the workers, the evidence pictures kept in
//! memory, and the counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boneage::{Assessor, DeviceChoice, ModelsDir};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// How the service runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The models.
    pub models: ModelsDir,
    /// The audit store's SQLite file.
    pub db: PathBuf,
    /// Bearer token required on every route but `/`, the health checks and the
    /// OpenAPI document; required when `addr` is not loopback.
    pub token: Option<String>,
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Assessments computed at once.
    pub workers: usize,
    /// Assessment requests that may wait for a worker; one more answers 503.
    pub queue: usize,
    /// Longest time a request may take, from its first byte to its answer.
    pub timeout: Duration,
    /// Evidence pictures kept in memory (the newest; pixels are never stored).
    pub pictures: usize,
    /// Where the models run.
    pub device: DeviceChoice,
}

impl Config {
    /// Defaults for `models` and `db`: loopback port 8080, 64 MB bodies, one worker
    /// per core, a queue of four per worker, 120 s, 100 pictures, the CPU.
    pub fn new(models: ModelsDir, db: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            models,
            db,
            token: None,
            body_limit: 64 << 20,
            workers: cores,
            queue: 4 * cores,
            timeout: Duration::from_secs(120),
            pictures: 100,
            device: DeviceChoice::Cpu,
        }
    }

    /// Refuses settings that would expose the service or cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !self.addr.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "listening on {} (not loopback) needs --token: every route but the health checks then asks for `Authorization: Bearer TOKEN`",
                self.addr
            ));
        }
        if self.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if self.body_limit < 1024 {
            return Err("--max-body must be at least 1 KB".into());
        }
        Ok(())
    }
}

/// The models, once loaded.
pub enum Models {
    /// Still loading.
    Loading,
    /// Ready.
    Ready(Arc<Assessor>),
    /// Loading failed; the message says why.
    Failed(String),
}

/// The shared state.
pub struct State {
    /// The configuration.
    pub config: Config,
    models: Mutex<Models>,
    /// The audit store.
    pub store: Store,
    /// The models' manifests and their hashes (`file sha256` lines).
    pub models_version: String,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Workers (permits = `config.workers`).
    pub workers: Arc<Semaphore>,
    /// Assessment requests admitted and not yet answered.
    admitted: AtomicUsize,
    /// Assessments being computed.
    running: Arc<AtomicUsize>,
    pictures: Mutex<VecDeque<(i64, Arc<Vec<u8>>)>>,
    /// Signalled when loading the models failed.
    pub load_failed: tokio::sync::Notify,
    started: std::time::Instant,
}

impl State {
    /// Opens the audit store and hashes the models' manifests; the models themselves
    /// load with [`State::load_models`].
    pub fn new(config: Config) -> Result<Arc<Self>, StoreError> {
        let models_version = manifest_hashes(&config.models);
        let store = Store::open(&config.db, models_version.clone())?;
        let workers = Arc::new(Semaphore::new(config.workers));
        let state = Arc::new(Self {
            config,
            models: Mutex::new(Models::Loading),
            store,
            models_version,
            metrics: Metrics::default(),
            workers,
            admitted: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            pictures: Mutex::new(VecDeque::new()),
            load_failed: tokio::sync::Notify::new(),
            started: std::time::Instant::now(),
        });
        Ok(state)
    }

    /// Loads the models (seconds; call off the async threads).
    pub fn load_models(&self) {
        let t = std::time::Instant::now();
        let loaded = Assessor::load(&self.config.models, self.config.device);
        let mut m = self.models.lock().unwrap_or_else(|p| p.into_inner());
        *m = match loaded {
            Ok(a) => {
                eprintln!(
                    "boneage serve: models loaded in {:.1} s; ready",
                    t.elapsed().as_secs_f64()
                );
                Models::Ready(Arc::new(a))
            }
            Err(e) => {
                eprintln!("boneage serve: {e}");
                self.load_failed.notify_one();
                Models::Failed(e.to_string())
            }
        };
    }

    /// Installs models loaded elsewhere (tests share one assessor between servers).
    pub fn set_models(&self, assessor: Arc<Assessor>) {
        *self.models.lock().unwrap_or_else(|p| p.into_inner()) = Models::Ready(assessor);
    }

    /// The assessor, or why there is none yet.
    pub fn assessor(&self) -> Result<Arc<Assessor>, String> {
        match &*self.models.lock().unwrap_or_else(|p| p.into_inner()) {
            Models::Ready(a) => Ok(a.clone()),
            Models::Loading => {
                Err("the models are still loading; try again in a few seconds".into())
            }
            Models::Failed(e) => Err(format!("the models could not be loaded: {e}")),
        }
    }

    /// Admits one assessment request unless `workers + queue` are already admitted.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let capacity = self.capacity();
        let mut n = self.admitted.load(Ordering::Acquire);
        loop {
            if n >= capacity {
                return None;
            }
            match self
                .admitted
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Admission {
                        state: self.clone(),
                    });
                }
                Err(now) => n = now,
            }
        }
    }

    /// Requests admitted at most at once.
    pub fn capacity(&self) -> usize {
        self.config.workers + self.config.queue
    }

    /// (admitted and waiting for a worker, being computed).
    pub fn queue_state(&self) -> (usize, usize) {
        let admitted = self.admitted.load(Ordering::Acquire);
        let running = self.running.load(Ordering::Acquire);
        (admitted.saturating_sub(running), running)
    }

    /// A guard counting one computation while it lives.
    pub fn running_guard(&self) -> Running {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self.running.clone())
    }

    /// Keeps an assessment's evidence picture (PNG) in memory, dropping the oldest.
    pub fn keep_picture(&self, id: i64, png: Vec<u8>) {
        let mut p = self.pictures.lock().unwrap_or_else(|p| p.into_inner());
        p.push_back((id, Arc::new(png)));
        while p.len() > self.config.pictures {
            p.pop_front();
        }
    }

    /// An assessment's evidence picture, while it is kept.
    pub fn picture(&self, id: i64) -> Option<Arc<Vec<u8>>> {
        let p = self.pictures.lock().unwrap_or_else(|p| p.into_inner());
        p.iter().find(|(i, _)| *i == id).map(|(_, png)| png.clone())
    }

    /// Seconds since the state was made.
    pub fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// One admitted request; dropping it frees its place.
pub struct Admission {
    state: Arc<State>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.state.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One computation in progress; dropping it ends it.
pub struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `file sha256` lines for every JSON manifest of the models (the U-Net's, the key
/// points', the hand template's, and each bone-age model's and the calibration):
/// which weights gave an answer, in every audit row.
pub fn manifest_hashes(models: &ModelsDir) -> String {
    let mut lines = Vec::new();
    let mut add = |dir: &Path, prefix: &str| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                lines.push(format!(
                    "{prefix}{} {}",
                    name.unwrap_or_default(),
                    hex(&Sha256::digest(&bytes))
                ));
            }
        }
    };
    add(&models.path, "");
    add(&models.age(), "age/");
    lines.join("\n")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
