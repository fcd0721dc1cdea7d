# Phoenix sidecar image: builds from source on Debian 12 with the project's own scripts.
#   docker build -t phoenix . && docker run --network host phoenix -c /etc/phoenix/phoenix.yaml
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN tools/setup.sh && tools/build.sh phoenix && tools/certs.sh /src/.demo/certs

FROM debian:12-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      libuv1 libprotobuf32 libyaml-cpp0.7 libre2-9 libabsl20220623 libssl3 libhiredis0.14 \
      ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/phoenix /usr/local/bin/phoenix
COPY config/phoenix-app.yaml /etc/phoenix/phoenix.yaml
# The demo config's HTTPS listener reads .demo/certs/ relative to the working directory. These
# are demo certificates made at build time: mount real ones over them.
COPY --from=build /src/.demo/certs /etc/phoenix/.demo/certs
WORKDIR /etc/phoenix
ENTRYPOINT ["/usr/local/bin/phoenix"]
CMD ["-c", "/etc/phoenix/phoenix.yaml"]
