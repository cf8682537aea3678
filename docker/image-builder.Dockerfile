# image-builder: gRPC :7101, probes/metrics :7111. Talks to a Docker engine over its API (bollard:
# no docker CLI needed) at DOCKER_HOST or /var/run/docker.sock, and runs `git` to fetch fatman
# sources. The job types (templates, Dockerfiles) are copied in; their tests are not.
ARG BASE_IMAGE=racetrack/debian-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends git >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log \
 && mkdir -p /var/log/racetrack/image-builder/build-logs /var/lib/racetrack/workspaces \
 && chown -R 10001:10001 /var/log/racetrack /var/lib/racetrack
COPY entrypoint.sh /usr/local/bin/racetrack-entrypoint
COPY job-types /opt/racetrack/job-types
COPY bin/image-builder /usr/local/bin/image-builder
ENV GRPC_ADDR=0.0.0.0:7101 HTTP_ADDR=0.0.0.0:7111 \
    JOB_TYPES_DIR=/opt/racetrack/job-types \
    BUILD_LOGS_DIR=/var/log/racetrack/image-builder/build-logs \
    WORKSPACES_DIR=/var/lib/racetrack/workspaces
USER 10001:10001
EXPOSE 7101 7111
ENTRYPOINT ["/usr/local/bin/racetrack-entrypoint"]
CMD ["image-builder"]
