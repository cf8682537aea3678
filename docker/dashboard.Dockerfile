# dashboard: the web UI, :7103 (/dashboard/...). Every action is a Lifecycle gRPC call with the user's token; nothing persistent.
# The binary is built on the host and copied in (docker/README.md); it links only libc and libgcc.
ARG BASE_IMAGE=racetrack/debian-base:bookworm
FROM ${BASE_IMAGE}
COPY entrypoint.sh /usr/local/bin/racetrack-entrypoint
COPY bin/dashboard /usr/local/bin/dashboard
ENV DASHBOARD_ADDR=0.0.0.0:7103
USER 10001:10001
EXPOSE 7103
ENTRYPOINT ["/usr/local/bin/racetrack-entrypoint"]
CMD ["dashboard"]
