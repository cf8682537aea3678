# lifecycle-supervisor: health/metrics :7106. Watches the Docker engine (socket or DOCKER_HOST) and reports to Lifecycle over gRPC; no database, no AUTH_KEY.
# The binary is built on the host and copied in (docker/README.md); it links only libc and libgcc.
ARG BASE_IMAGE=racetrack/debian-base:bookworm
FROM ${BASE_IMAGE}
COPY entrypoint.sh /usr/local/bin/racetrack-entrypoint
COPY bin/lifecycle-supervisor /usr/local/bin/lifecycle-supervisor
ENV HTTP_ADDR=0.0.0.0:7106
USER 10001:10001
EXPOSE 7106
ENTRYPOINT ["/usr/local/bin/racetrack-entrypoint"]
CMD ["lifecycle-supervisor"]
