# pub: the proxy in front of fatmen, :7105 (/pub/...). Reaches Lifecycle over gRPC; nothing persistent.
# The binary is built on the host and copied in (docker/README.md); it links only libc and libgcc.
ARG BASE_IMAGE=racetrack/debian-base:bookworm
FROM ${BASE_IMAGE}
COPY entrypoint.sh /usr/local/bin/racetrack-entrypoint
COPY bin/pub /usr/local/bin/pub
ENV PUB_ADDR=0.0.0.0:7105
USER 10001:10001
EXPOSE 7105
ENTRYPOINT ["/usr/local/bin/racetrack-entrypoint"]
CMD ["pub"]
