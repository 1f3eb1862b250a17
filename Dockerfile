# syntax=docker/dockerfile:1
# Build: docker build -t impact-syncer .
# Not exercised by this project's CI, which has no Docker engine.
# .dockerignore keeps .env, local ClickHouse data, bin/ and .git out of the build.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/syncer ./cmd/syncer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/syncer /usr/local/bin/syncer
USER nonroot:nonroot
EXPOSE 8080
# distroless has no curl: the binary checks its own /healthz (on SYNCER_HTTP_ADDR).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/syncer", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/syncer"]
CMD ["run"]
