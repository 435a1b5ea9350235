# The HTML report's script and style sheet (web/src), built at build time and compiled into
# lw_report: `npm ci` in the build directory (pinned by web/package-lock.json; offline when
# the npm cache has the packages), esbuild bundles and minifies (web/build.mjs), and
# web/embed.cmake writes web_assets.cpp.  node_modules and every output stay in the build
# directory.  Included by src/report/CMakeLists.txt; defines LEAKWATCH_WEB_ASSETS_CPP.
find_program(LEAKWATCH_NODE NAMES node nodejs REQUIRED)
find_program(LEAKWATCH_NPM NAMES npm REQUIRED)

set(web_src ${CMAKE_SOURCE_DIR}/web)
set(web_bin ${CMAKE_BINARY_DIR}/web)
set(LEAKWATCH_WEB_NODE_MODULES ${web_bin}/node_modules)
file(MAKE_DIRECTORY ${web_bin})
file(GLOB web_sources CONFIGURE_DEPENDS ${web_src}/src/*.js ${web_src}/src/*.css)

add_custom_command(
  OUTPUT ${web_bin}/node_modules/.package-lock.json
  COMMAND ${CMAKE_COMMAND} -E copy ${web_src}/package.json ${web_src}/package-lock.json ${web_bin}
  COMMAND ${CMAKE_COMMAND} -E env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
          ${LEAKWATCH_NPM} ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error
  DEPENDS ${web_src}/package.json ${web_src}/package-lock.json
  WORKING_DIRECTORY ${web_bin}
  COMMENT "npm ci (web/package-lock.json)")

add_custom_command(
  OUTPUT ${web_bin}/out/app.js ${web_bin}/out/app.css ${web_bin}/out/app.sha256
  COMMAND ${LEAKWATCH_NODE} ${web_src}/build.mjs ${web_src}/src ${web_bin}/out ${web_bin}/node_modules
  DEPENDS ${web_bin}/node_modules/.package-lock.json ${web_src}/build.mjs ${web_sources}
  COMMENT "Bundling the HTML report's script (web/src)")

set(LEAKWATCH_WEB_ASSETS_CPP ${web_bin}/web_assets.cpp)
add_custom_command(
  OUTPUT ${LEAKWATCH_WEB_ASSETS_CPP}
  COMMAND ${CMAKE_COMMAND} -DJS=${web_bin}/out/app.js -DCSS=${web_bin}/out/app.css
          -DHASH=${web_bin}/out/app.sha256 -DOUT=${LEAKWATCH_WEB_ASSETS_CPP}
          -P ${web_src}/embed.cmake
  DEPENDS ${web_bin}/out/app.js ${web_bin}/out/app.css ${web_bin}/out/app.sha256
          ${web_src}/embed.cmake
  COMMENT "Embedding the HTML report's script")
