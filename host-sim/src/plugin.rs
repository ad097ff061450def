//! The host (`HostSim`: engine, compiled-module cache, shared state) and loaded plugins.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig,
};

use crate::error::Error;
use crate::properties::{PropValue, PropertyOverrides};
use crate::shared::{lock, Metric, Shared};
use crate::state::{HostState, PluginInfo};
use crate::types::{AbiVersion, Level};
use crate::upstreams::{UpstreamReply, UpstreamRequest, Upstreams};
use crate::vm::{Vm, VmOptions};

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct HostSimConfig {
    /// Wasm instructions a single callback may run (wasmtime fuel); `None` = unlimited.
    pub fuel_per_callback: Option<u64>,
    /// Linear-memory limit of each VM in bytes.
    pub memory_limit: usize,
    /// Instances the pooling allocator reserves slots for.
    pub max_instances: u32,
    /// Seed of the guests' `random_get`.
    pub seed: u64,
    /// Folder of compiled modules kept between processes (see `disk_cache`); `None`
    /// compiles in every process. The command line uses the user's cache folder.
    pub disk_cache: Option<PathBuf>,
}

impl Default for HostSimConfig {
    fn default() -> Self {
        HostSimConfig {
            fuel_per_callback: Some(1_000_000_000),
            memory_limit: 256 << 20,
            max_instances: 256,
            seed: 0x5eed,
            disk_cache: None,
        }
    }
}

struct Compiled {
    bytes: Arc<[u8]>,
    pre: InstancePre<HostState>,
    abi: AbiVersion,
}

struct EngineCache {
    engine: Engine,
    linker: Linker<HostState>,
    modules: Mutex<HashMap<u64, Vec<Arc<Compiled>>>>,
    config: HostSimConfig,
    /// (module, name) of every import the linker serves.
    served: HashSet<(String, String)>,
}

/// A simulated Envoy: a wasmtime engine, a cache of compiled modules, and the state all its
/// plugins share (virtual clock, shared data, queues, metrics, upstream clusters).
///
/// Cloning is cheap and shares everything. [`HostSim::fresh`] shares only the engine and
/// the compiled modules, for tests that need isolated state but not a recompile.
#[derive(Clone)]
pub struct HostSim {
    cache: Arc<EngineCache>,
    shared: Arc<Shared>,
}

/// Where a plugin's module comes from.
#[derive(Clone, Debug)]
pub enum WasmSource {
    File(PathBuf),
    Bytes(Vec<u8>),
    /// WebAssembly text, compiled by wasmtime (for tests).
    Wat(String),
}

impl Default for WasmSource {
    fn default() -> Self {
        WasmSource::Bytes(Vec::new())
    }
}

/// One `envoy.extensions.filters.http.wasm.v3.Wasm` filter's configuration.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub wasm: WasmSource,
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    /// Plugin configuration (`proxy_on_configure`'s buffer).
    pub configuration: Vec<u8>,
    /// VM configuration (`proxy_on_vm_start`'s buffer).
    pub vm_configuration: Vec<u8>,
    /// Keep serving requests (skipping the filter) after the VM trapped.
    pub fail_open: bool,
    /// Number of VMs (Envoy worker threads); streams are spread round-robin.
    pub workers: usize,
    /// Lowest level kept in the logs (and what `proxy_get_log_level` answers).
    pub log_level: Level,
    /// Environment variables visible through WASI (`vm_config.environment_variables`).
    pub env: Vec<(String, String)>,
    /// Properties the plugin reads from the host (`node.metadata.*`, `listener_direction`...).
    pub properties: PropertyOverrides,
    /// Stub imports this host does not serve with traps instead of refusing the module.
    pub allow_unknown_imports: bool,
}

impl Default for PluginSpec {
    fn default() -> Self {
        PluginSpec {
            wasm: WasmSource::default(),
            name: String::new(),
            root_id: String::new(),
            vm_id: String::new(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            fail_open: false,
            workers: 1,
            log_level: Level::Info,
            env: Vec::new(),
            properties: PropertyOverrides::default(),
            allow_unknown_imports: false,
        }
    }
}

impl PluginSpec {
    /// A spec with name, root_id and vm_id all set to `name`.
    pub fn new(wasm: WasmSource, name: &str) -> Self {
        PluginSpec {
            wasm,
            name: name.to_string(),
            root_id: name.to_string(),
            vm_id: name.to_string(),
            ..Default::default()
        }
    }

    pub fn with_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.configuration = configuration.into();
        self
    }

    pub fn with_property(mut self, path: &[&str], value: PropValue) -> Self {
        self.properties.set(path, value);
        self
    }
}

/// A loaded plugin: one VM per worker, each started and configured.
pub struct Plugin {
    pub(crate) sim: HostSim,
    pub(crate) vms: Vec<Mutex<Vm>>,
    pub(crate) info: Arc<PluginInfo>,
    rr: std::sync::atomic::AtomicUsize,
    /// Log lines of start-up and `advance` not yet taken by a test.
    pending_logs: Mutex<Vec<(Level, String)>>,
    /// Callouts root contexts made outside streams (start-up, ticks, queues, callout
    /// callbacks during `advance`) not yet taken.
    pending_callouts: Mutex<Vec<crate::upstreams::Callout>>,
    /// Time spent instantiating and starting each VM (not compiling).
    pub instantiate_time: Duration,
    source: WasmSource,
    allow_unknown_imports: bool,
}

impl HostSim {
    pub fn new() -> Result<HostSim, Error> {
        Self::with_config(HostSimConfig::default())
    }

    pub fn with_config(config: HostSimConfig) -> Result<HostSim, Error> {
        let mut c = Config::new();
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .max_memory_size(config.memory_limit);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        c.consume_fuel(config.fuel_per_callback.is_some());
        let engine = Engine::new(&c).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        crate::abi::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let shared = Arc::new(Shared::new(config.seed));
        let served = {
            let info = Arc::new(PluginInfo::placeholder());
            let mut store = wasmtime::Store::new(
                &engine,
                HostState::new(info, shared.clone(), Default::default()),
            );
            linker
                .iter(&mut store)
                .map(|(m, n, _)| (m.to_string(), n.to_string()))
                .collect()
        };
        Ok(HostSim {
            cache: Arc::new(EngineCache {
                engine,
                linker,
                modules: Mutex::default(),
                config: config.clone(),
                served,
            }),
            shared: Arc::new(Shared::new(config.seed)),
        })
    }

    /// A host with fresh state (clock, shared data, metrics, upstreams) that reuses this
    /// one's engine and compiled modules.
    pub fn fresh(&self) -> HostSim {
        HostSim {
            cache: self.cache.clone(),
            shared: Arc::new(Shared::new(self.cache.config.seed)),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Compiles (or finds in the cache) and starts a plugin.
    pub fn load(&self, spec: PluginSpec) -> Result<Plugin, Error> {
        let compiled = self.compile(&spec.wasm, spec.allow_unknown_imports)?;
        let source = match &spec.wasm {
            // Keep the compiled bytes rather than re-reading a file later.
            WasmSource::File(_) => WasmSource::Bytes(compiled.bytes.to_vec()),
            other => other.clone(),
        };
        let allow_unknown_imports = spec.allow_unknown_imports;
        let info = Arc::new(PluginInfo {
            name: spec.name,
            root_id: spec.root_id,
            vm_id: spec.vm_id,
            configuration: spec.configuration,
            vm_configuration: spec.vm_configuration,
            log_level: spec.log_level,
            env: spec.env,
            properties: spec.properties,
            abi: compiled.abi,
            fail_open: spec.fail_open,
        });
        let opts = VmOptions {
            fuel: self.cache.config.fuel_per_callback,
            memory_limit: self.cache.config.memory_limit,
        };
        let mut vms = Vec::new();
        let mut logs = Vec::new();
        let mut callouts = Vec::new();
        let started = Instant::now();
        for _ in 0..spec.workers.max(1) {
            let mut vm = Vm::start(&compiled.pre, info.clone(), self.shared.clone(), &opts)?;
            logs.extend(vm.take_logs());
            callouts.extend(vm.take_callouts());
            vms.push(Mutex::new(vm));
        }
        let instantiate_time = started.elapsed() / vms.len() as u32;
        Ok(Plugin {
            sim: self.clone(),
            vms,
            info,
            rr: Default::default(),
            pending_logs: Mutex::new(logs),
            pending_callouts: Mutex::new(callouts),
            instantiate_time,
            source,
            allow_unknown_imports,
        })
    }

    fn compile(&self, src: &WasmSource, allow_unknown: bool) -> Result<Arc<Compiled>, Error> {
        let bytes: Vec<u8> = match src {
            WasmSource::File(p) => std::fs::read(p).map_err(|e| Error::Io {
                path: p.clone(),
                source: e,
            })?,
            WasmSource::Bytes(b) => b.clone(),
            WasmSource::Wat(t) => t.as_bytes().to_vec(),
        };
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        allow_unknown.hash(&mut h);
        let key = h.finish();
        if let Some(found) = lock(&self.cache.modules)
            .get(&key)
            .and_then(|v| v.iter().find(|c| *c.bytes == *bytes).cloned())
        {
            return Ok(found);
        }
        // Compile outside the lock: it can take a second for a large module.
        let module = self.compile_or_reuse(&bytes)?;
        let abi =
            AbiVersion::detect(module.exports().map(|e| e.name())).ok_or(Error::UnknownAbi)?;
        let pre = if allow_unknown {
            let mut linker = self.cache.linker.clone();
            linker
                .define_unknown_imports_as_traps(&module)
                .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
            linker.instantiate_pre(&module)
        } else {
            for imp in module.imports() {
                if !self
                    .cache
                    .served
                    .contains(&(imp.module().to_string(), imp.name().to_string()))
                {
                    return Err(Error::MissingImport {
                        module: imp.module().to_string(),
                        name: imp.name().to_string(),
                    });
                }
            }
            self.cache.linker.instantiate_pre(&module)
        }
        .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let compiled = Arc::new(Compiled {
            bytes: bytes.into(),
            pre,
            abi,
        });
        lock(&self.cache.modules)
            .entry(key)
            .or_default()
            .push(compiled.clone());
        Ok(compiled)
    }

    /// The module from the disk cache when it has it, else compiled (and stored there).
    fn compile_or_reuse(&self, bytes: &[u8]) -> Result<Module, Error> {
        let engine = &self.cache.engine;
        let entry = self
            .cache
            .config
            .disk_cache
            .as_ref()
            .map(|dir| crate::disk_cache::entry(dir, engine, bytes, "m"));
        if let Some(m) = entry
            .as_ref()
            .and_then(|p| crate::disk_cache::load(engine, p))
        {
            return Ok(m);
        }
        let module = Module::new(engine, bytes).map_err(|e| Error::Compile(format!("{e:#}")))?;
        if let Some(p) = &entry {
            crate::disk_cache::store(&module, p);
        }
        Ok(module)
    }

    /// Mean time to instantiate `plugin`'s module from its `InstancePre` (pooling allocator),
    /// and separately to instantiate and run its start-up (`_initialize`, `proxy_on_vm_start`,
    /// `proxy_on_configure`). Each loop runs at most `n` rounds and stops early once `budget`
    /// has passed (after at least one round): configuring a 10,000-rule table takes
    /// milliseconds, and 200 of them would take minutes.
    pub fn measure_instantiation(
        &self,
        plugin: &Plugin,
        n: u32,
        budget: Duration,
    ) -> Result<(Timed, Timed), Error> {
        let compiled = self.compile(&plugin.source, plugin.allow_unknown_imports)?;
        let inst = Timed::run(n, budget, || {
            let mut store = wasmtime::Store::new(
                &self.cache.engine,
                HostState::new(plugin.info.clone(), self.shared.clone(), Default::default()),
            );
            if let Some(f) = self.cache.config.fuel_per_callback {
                store
                    .set_fuel(f)
                    .map_err(|e| Error::Instantiate(e.to_string()))?;
            }
            compiled
                .pre
                .instantiate(&mut store)
                .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
            Ok(())
        })?;
        let opts = VmOptions {
            fuel: self.cache.config.fuel_per_callback,
            memory_limit: self.cache.config.memory_limit,
        };
        let start = Timed::run(n, budget, || {
            Vm::start(
                &compiled.pre,
                plugin.info.clone(),
                self.shared.clone(),
                &opts,
            )
            .map(drop)
        })?;
        Ok((inst, start))
    }

    /// Virtual wall-clock time.
    pub fn now(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + Duration::from_nanos(self.shared.now())
    }

    /// A metric by name, as defined by any plugin of this host.
    pub fn metric(&self, name: &str) -> Option<Metric> {
        lock(&self.shared.metrics).by_name.get(name).cloned()
    }

    pub fn metrics(&self) -> Vec<(String, Metric)> {
        lock(&self.shared.metrics)
            .by_name
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Shared data of `vm_id` (value, cas).
    pub fn shared_data(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        lock(&self.shared.shared_data).get(vm_id, key)
    }

    pub fn set_shared_data(&self, vm_id: &str, key: &[u8], value: &[u8]) {
        lock(&self.shared.shared_data).set(vm_id, key, value, 0);
    }

    /// Scripts what `cluster` answers.
    pub fn set_upstream(&self, cluster: &str, reply: UpstreamReply) {
        lock(&self.shared.upstreams).set(cluster, reply);
    }

    /// Scripts the answer to unary gRPC calls to `key`: a cluster, `cluster/service` or
    /// `cluster/service/method`. Unscripted calls are answered UNIMPLEMENTED.
    pub fn set_grpc_reply(&self, key: &str, reply: crate::upstreams::GrpcReply) {
        lock(&self.shared.upstreams).set_grpc(key, reply);
    }

    pub fn set_upstream_fn(
        &self,
        cluster: &str,
        f: impl Fn(&UpstreamRequest) -> UpstreamReply + Send + Sync + 'static,
    ) {
        lock(&self.shared.upstreams).set_fn(cluster, f);
    }

    /// Declares the clusters that exist; any other name is unknown from now on.
    pub fn declare_clusters<S: AsRef<str>>(&self, clusters: impl IntoIterator<Item = S>) {
        lock(&self.shared.upstreams).declare(clusters);
    }

    /// The endpoint address of `cluster`, as `upstream.address` reports it.
    pub fn set_upstream_address(&self, cluster: &str, address: &str) {
        lock(&self.shared.upstreams).set_address(cluster, address);
    }

    pub(crate) fn upstreams(&self) -> MutexGuard<'_, Upstreams> {
        lock(&self.shared.upstreams)
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn fail_open(&self) -> bool {
        self.info.fail_open
    }

    pub fn abi_version(&self) -> AbiVersion {
        self.info.abi
    }

    pub fn sim(&self) -> &HostSim {
        &self.sim
    }

    pub fn workers(&self) -> usize {
        self.vms.len()
    }

    pub(crate) fn vm(&self, worker: usize) -> MutexGuard<'_, Vm> {
        lock(&self.vms[worker % self.vms.len()])
    }

    pub(crate) fn pick_worker(&self) -> usize {
        self.rr.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.vms.len()
    }

    /// Whether any VM of this plugin trapped (and so fails every later stream).
    pub fn failed(&self) -> Option<String> {
        self.vms.iter().find_map(|m| lock(m).failed.clone())
    }

    /// Log lines emitted outside requests (start-up, ticks, callouts during `advance`).
    pub fn take_logs(&self) -> Vec<(Level, String)> {
        let mut logs = std::mem::take(&mut *lock(&self.pending_logs));
        for m in &self.vms {
            logs.extend(lock(m).take_logs());
        }
        logs
    }

    /// Callouts root contexts made outside streams (at start-up, from ticks, queues and
    /// callout callbacks while no stream was open), in order, not taken yet.
    pub fn take_callouts(&self) -> Vec<crate::upstreams::Callout> {
        std::mem::take(&mut *lock(&self.pending_callouts))
    }

    /// Advances the host's virtual clock by `d`, firing this plugin's ticks, `http_call`
    /// responses and queue notifications in time order.
    pub fn advance(&self, d: Duration) {
        let target = self.sim.shared.now() + d.as_nanos() as u64;
        loop {
            let next = (0..self.vms.len())
                .filter_map(|w| self.vm(w).next_event_time().map(|t| (t, w)))
                .min();
            let Some((t, w)) = next.filter(|(t, _)| *t <= target) else {
                break;
            };
            self.sim.shared.advance_to(t);
            let mut vm = self.vm(w);
            while let Some((ctx, ev)) = vm.pop_due(self.sim.shared.now()) {
                let out = vm.deliver(ctx, ev, None);
                lock(&self.pending_logs).extend(out.logs);
                lock(&self.pending_callouts).extend(out.callouts);
            }
        }
        self.sim.shared.advance_to(target);
    }

    /// Linear memory of the plugin's largest VM, in bytes: after `load`, what its start-up
    /// and configuration took.
    pub fn memory_bytes(&self) -> usize {
        (0..self.vms.len())
            .map(|w| self.vm(w).memory_bytes())
            .max()
            .unwrap_or(0)
    }

    /// Number of proxy_* host calls the plugin's VMs made so far.
    pub fn host_calls(&self) -> u64 {
        self.vms.iter().map(|m| lock(m).host_calls()).sum()
    }
}

/// A mean time over the rounds a capped loop ran.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub mean: Duration,
    pub rounds: u32,
}

impl Timed {
    /// Runs `f` up to `n` times (at least once), stopping once `budget` has passed.
    fn run(
        n: u32,
        budget: Duration,
        mut f: impl FnMut() -> Result<(), Error>,
    ) -> Result<Timed, Error> {
        let started = Instant::now();
        let mut rounds = 0;
        while rounds < n.max(1) {
            f()?;
            rounds += 1;
            if started.elapsed() >= budget {
                break;
            }
        }
        Ok(Timed {
            mean: started.elapsed() / rounds,
            rounds,
        })
    }
}
