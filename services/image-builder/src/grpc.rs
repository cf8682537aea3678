//! The `ImageBuilder` gRPC service.
//!
//! A build runs in its own task: a client that disconnects does not stop it, and can follow it
//! again with `GetBuild` / `StreamBuildLogs` (or by calling `Build` again with the same
//! deployment id while it runs, which attaches instead of starting a second build).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use racetrack_proto::image_builder::build_event::Event;
use racetrack_proto::image_builder::build_status::State;
use racetrack_proto::image_builder::image_builder_server::{ImageBuilder, ImageBuilderServer};
use racetrack_proto::image_builder::{
    BuildEvent, BuildRequest, BuildStatus, GetBuildRequest, ListJobTypesRequest,
    ListJobTypesResponse, LogLine,
};
use tonic::{Request, Response, Status};

use crate::builder::Builder;
use crate::builds::{BuildStore, MAX_MEMORY_LOG_BYTES};
use crate::naming::{validate_deployment_id, validate_tag};

pub struct ImageBuilderService {
    builder: Arc<Builder>,
    store: Arc<BuildStore>,
}

impl ImageBuilderService {
    pub fn new(builder: Arc<Builder>, store: Arc<BuildStore>) -> ImageBuilderService {
        ImageBuilderService { builder, store }
    }

    /// The tonic server, accepting build contexts up to `MAX_BUILD_CONTEXT_BYTES` (plus room
    /// for the rest of the request).
    pub fn into_server(self) -> ImageBuilderServer<ImageBuilderService> {
        let limit = usize::try_from(self.builder.config.max_build_context_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(8 << 20);
        ImageBuilderServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX)
    }

    fn log_file(&self, id: &str) -> std::path::PathBuf {
        self.builder.config.build_logs_dir.join(format!("{id}.log"))
    }

    /// The tail of a log file left by an earlier process (or a forgotten build).
    async fn log_file_text(&self, id: &str) -> Option<String> {
        let bytes = tokio::fs::read(self.log_file(id)).await.ok()?;
        let start = bytes.len().saturating_sub(MAX_MEMORY_LOG_BYTES);
        Some(String::from_utf8_lossy(&bytes[start..]).into_owned())
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn check_id(id: &str) -> Result<(), Status> {
    validate_deployment_id(id).map_err(Status::invalid_argument)
}

#[tonic::async_trait]
impl ImageBuilder for ImageBuilderService {
    type BuildStream = EventStream<BuildEvent>;
    type StreamBuildLogsStream = EventStream<LogLine>;

    async fn build(
        &self,
        request: Request<BuildRequest>,
    ) -> Result<Response<Self::BuildStream>, Status> {
        // The build span (in its own task) is the caller's child: docs/architecture.md,
        // "Tracing".
        let parent = racetrack_telemetry::extract_grpc(&request);
        // The request holds secrets: never log it as a whole.
        let request = request.into_inner();
        check_id(&request.deployment_id)?;
        validate_tag(&request.tag).map_err(Status::invalid_argument)?;
        if request.manifest.is_none() {
            return Err(Status::invalid_argument("manifest is required"));
        }
        let (record, is_new) = self.store.start_or_attach(&request.deployment_id);
        if is_new {
            tracing::info!(deployment_id = %request.deployment_id, "build requested");
            let builder = Arc::clone(&self.builder);
            tokio::spawn(builder.run(request, Arc::clone(&record), parent));
        } else {
            tracing::info!(deployment_id = %request.deployment_id, "attached to a running build");
        }
        Ok(Response::new(Box::pin(record.events().map(Ok))))
    }

    async fn get_build(
        &self,
        request: Request<GetBuildRequest>,
    ) -> Result<Response<BuildStatus>, Status> {
        let id = request.into_inner().deployment_id;
        check_id(&id)?;
        if let Some(record) = self.store.get(&id) {
            return Ok(Response::new(record.status()));
        }
        match self.log_file_text(&id).await {
            Some(logs) => Ok(Response::new(BuildStatus {
                state: State::Unknown as i32,
                phase: String::new(),
                logs,
                result: None,
            })),
            None => Err(Status::not_found(format!("no build of deployment {id}"))),
        }
    }

    async fn stream_build_logs(
        &self,
        request: Request<GetBuildRequest>,
    ) -> Result<Response<Self::StreamBuildLogsStream>, Status> {
        let id = request.into_inner().deployment_id;
        check_id(&id)?;
        if let Some(record) = self.store.get(&id) {
            let lines = record.events().filter_map(|e| async move {
                match e.event {
                    Some(Event::Log(line)) => Some(Ok(line)),
                    _ => None,
                }
            });
            return Ok(Response::new(Box::pin(lines)));
        }
        match self.log_file_text(&id).await {
            Some(text) => {
                let lines: Vec<Result<LogLine, Status>> = text
                    .lines()
                    .map(|l| {
                        Ok(LogLine {
                            line: l.to_string(),
                        })
                    })
                    .collect();
                Ok(Response::new(Box::pin(futures_util::stream::iter(lines))))
            }
            None => Err(Status::not_found(format!("no build of deployment {id}"))),
        }
    }

    async fn list_job_types(
        &self,
        _request: Request<ListJobTypesRequest>,
    ) -> Result<Response<ListJobTypesResponse>, Status> {
        let builder = Arc::clone(&self.builder);
        let catalog = tokio::task::spawn_blocking(move || builder.job_types())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        for problem in &catalog.problems {
            tracing::warn!(%problem, "job type skipped");
        }
        Ok(Response::new(ListJobTypesResponse {
            job_types: catalog.names(),
        }))
    }
}
