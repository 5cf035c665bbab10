# syntax=docker/dockerfile:1
#
# The Plugboard relay image.
#
#   docker build -t plugboard/relay:0.1.0 .
#   podman build --format docker -t plugboard/relay:0.1.0 .   # podman: keep the HEALTHCHECK
#   docker run -p 127.0.0.1:8080:8080 -v plugboard-data:/var/lib/plugboard \
#     -e PLUGBOARD_SENTRY_CLIENT_SECRET=... plugboard/relay:0.1.0
#
# See docs/deployment.md. Three stages:
#   build   - every dependency (no install scripts: tsc needs no native module), `npm run build`
#   prod    - `npm ci --omit=dev` from the manifests alone (compiling better-sqlite3), then
#             what each workspace publishes
#   Both installs come before the sources, so that editing a source reuses them.
#   runtime - node:20-bookworm-slim with that tree only: no compiler, no dev dependencies,
#             no TypeScript sources, no tests.

# Pin the base by tag (and, for a release, by digest: node:20-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# The manifests first, then `npm ci`, then the sources: a source change
# reuses the cached install layer. Every workspace of package.json needs its
# package.json here (and its bin/ scripts, which npm links); a missing one
# makes `npm ci` fail, and packages/relay/test/dockerfile.test.ts checks the list.
COPY package.json package-lock.json tsconfig.base.json tsconfig.build.json ./
COPY packages/sdk/package.json packages/sdk/
COPY packages/templates/package.json packages/templates/
COPY packages/robot-http/package.json packages/robot-http/
COPY packages/notifier-dingtalk/package.json packages/notifier-dingtalk/
COPY packages/notifier-feishu/package.json packages/notifier-feishu/
COPY packages/notifier-im/package.json packages/notifier-im/
COPY packages/sso/package.json packages/sso/
COPY packages/relay/package.json packages/relay/
COPY packages/relay/bin/ packages/relay/bin/
COPY packages/notifier-webhook/package.json packages/notifier-webhook/
COPY packages/notifier-jira/package.json packages/notifier-jira/
COPY packages/notifier-jira/bin/ packages/notifier-jira/bin/
COPY examples/custom-notifier/package.json examples/custom-notifier/
COPY examples/custom-sso-provider/package.json examples/custom-sso-provider/
RUN npm ci --ignore-scripts
COPY packages/ packages/
COPY examples/custom-notifier/ examples/custom-notifier/
COPY examples/custom-sso-provider/ examples/custom-sso-provider/
RUN npm run build
# Lay out the production tree: the root manifest and lockfile, and for every
# workspace exactly what `npm pack` would publish (its "files": dist, bin,
# samples, README). The examples workspaces are left out of the image.
# /manifests holds only what the production `npm ci` reads (manifests, lockfile,
# bin scripts): the prod stage installs from it, so that a source change, which
# changes /out, does not compile better-sqlite3 again.
RUN set -eu; mkdir -p /out /manifests /tmp/packs; \
    node -e "const p=require('./package.json'); p.workspaces=p.workspaces.filter(w=>!w.startsWith('examples/')); delete p.devDependencies; delete p.scripts; require('fs').writeFileSync('/out/package.json', JSON.stringify(p, null, 2)+'\n')"; \
    cp package-lock.json /out/; \
    cp /out/package.json /out/package-lock.json /manifests/; \
    for ws in $(node -p "require('/out/package.json').workspaces.join(' ')"); do \
      tgz="$(cd "$ws" && npm pack --silent --pack-destination /tmp/packs | tail -n 1)"; \
      mkdir -p "/out/$ws" "/manifests/$ws"; \
      tar -xzf "/tmp/packs/$tgz" -C "/out/$ws" --strip-components=1; \
      cp "/out/$ws/package.json" "/manifests/$ws/"; \
      if [ -d "/out/$ws/bin" ]; then cp -R "/out/$ws/bin" "/manifests/$ws/"; fi; \
    done

# ---------------------------------------------------------------- prod
FROM ${NODE_IMAGE} AS prod
# better-sqlite3 is compiled from source (no prebuilt binary is downloaded),
# against the Node headers of the base image (/usr/local/include/node in the
# official image), never fetched from nodejs.org. A base without them (a
# locally made stand-in) gets Node 20's headers from Debian's libnode-dev
# (trixie ships Node 20: same major, same ABI 115); only the headers are
# unpacked, nothing from trixie is installed.
RUN set -eu; apt-get update; \
    apt-get install -y --no-install-recommends python3 make g++ libuv1-dev; \
    if [ -f /usr/local/include/node/common.gypi ]; then \
      ln -s /usr/local /opt/node-headers; \
    else \
      echo 'deb http://deb.debian.org/debian trixie main' > /etc/apt/sources.list.d/node-headers.list; \
      apt-get update; \
      cd /tmp && apt-get download libnode-dev; \
      mkdir -p /tmp/libnode && dpkg-deb -x /tmp/libnode-dev_*.deb /tmp/libnode; \
      mv /tmp/libnode/usr /opt/node-headers; \
      rm -rf /etc/apt/sources.list.d/node-headers.list /tmp/libnode*; \
      grep -q 'define NODE_MAJOR_VERSION 20' /opt/node-headers/include/node/node_version.h; \
    fi; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
    npm_config_build_from_source=true npm_config_nodedir=/opt/node-headers
COPY --from=build /manifests/ ./
RUN npm ci --omit=dev \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src build/Release/obj build/Release/obj.target build/Release/.deps \
           build/Release/test_extension.node build/deps \
 && node -e "require('/app/node_modules/better-sqlite3')(':memory:').prepare('select 1').get()" \
 && npm cache clean --force
COPY --from=build /out/ ./
# Nothing at run time reads source maps or type declarations (about 50 MB).
RUN find /app/node_modules/ /app/packages/ -type f \
      \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="plugboard-relay" \
      org.opencontainers.image.description="Self-hosted relay that takes Sentry webhooks durably and hands them to notifier plugins." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:20-bookworm-slim" \
      org.opencontainers.image.documentation="docs/deployment.md"

ENV NODE_ENV=production \
    PLUGBOARD_LISTEN=0.0.0.0:8080 \
    PLUGBOARD_DATA_DIR=/var/lib/plugboard \
    PATH=/app/node_modules/.bin:$PATH

# /app is the relay's "app root": plugins are discovered from the
# "dependencies" of /app/package.json (see examples/notifier-image). It is
# owned by root and read-only for the relay; only the data directory is its.
COPY --from=prod /app/ /app/
RUN mkdir -p /var/lib/plugboard && chown node:node /var/lib/plugboard && chmod 0750 /var/lib/plugboard
VOLUME ["/var/lib/plugboard"]
WORKDIR /app
USER node
EXPOSE 8080

# node is PID 1: the relay installs SIGTERM/SIGINT handlers, so the kernel
# delivers the signal to them (PID 1 only ignores signals WITHOUT a handler)
# and the relay drains (dispatch.shutdownGraceMs, default 10 s, below the 30 s
# of Kubernetes and 10 s of `docker stop`: raise the stop timeout with it). It
# starts no child processes, so there are no zombies to reap; `--init` works too.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.PLUGBOARD_LISTEN||'8080').split(':').pop();fetch('http://127.0.0.1:'+p+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/packages/relay/bin/plugboard.js"]
CMD ["serve"]
