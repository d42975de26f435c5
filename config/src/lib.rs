//! Configuration of the wBPF gateway and node probe.
//!
//! One YAML file configures both halves: `receivers`, `storage`, `sampling` and `exporters` for
//! the gateway, `probe` for the node probe. Every struct rejects unknown keys, every error names
//! the file, line, column and key path, and `${env:NAME}` is replaced by the environment
//! variable `NAME` before parsing. Defaults are chosen so that an empty file is a working local
//! gateway.

mod compare;
mod correlation;
mod duration;
mod env;
mod error;
mod exporters;
mod gateway;
mod gateway_client;
mod head;
mod load;
mod locate;
mod probe;
mod security;
mod tail_sampling;

pub use compare::{EdgeCasesConfig, LateralConfig};
pub use correlation::CorrelationConfig;
pub use error::{ConfigError, Problem};
pub use exporters::{ExportersConfig, FileExporterConfig, OtlpExporterConfig, RetryConfig};
pub use gateway::{
    AdminConfig, GatewayConfig, ReceiversConfig, SamplingConfig, SamplingMode, StorageConfig,
};
pub use gateway_client::GatewayClientConfig;
pub use head::HeadSamplingConfig;
pub use load::{load_file, parse_str, Config};
pub use probe::{
    ContextConfig, DetectorConfig, FaultBurstConfig, FunctionLatencyConfig, LatencyThreshold,
    MemoryPressureConfig, MigrationConfig, PoolFaultsConfig, PoolObjectsConfig, ProbeConfig,
    SyscallHook, SyscallLatencyConfig, DEFAULT_MIN_SAMPLES,
};
pub use security::{ApiKeyConfig, AuthConfig, ClientTlsConfig, Secret, TlsConfig};
pub use tail_sampling::{
    parse_tail_sampling_block, AndConfig, BooleanAttributeConfig, BytesLimitingConfig,
    CompositeConfig, DecisionCacheConfig, DropConfig, LatencyConfig, NotConfig,
    NumericAttributeConfig, OttlConditionConfig, PolicyConfig, PolicyKind, ProbabilisticConfig,
    RateAllocationConfig, RateLimitingConfig, SpanCountConfig, StatusCodeConfig,
    StringAttributeConfig, TailSamplingConfig, TraceStateConfig, POLICY_TYPES,
};
