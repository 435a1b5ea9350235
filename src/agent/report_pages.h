// What the agent serves from its stored investigations (ReportStore), read-only:
//   GET /                          the list: target, trigger, finding, duration, a sparkline of
//                                  the target's memory around the trigger (HTML, no script)
//   GET /reports/<id>              one investigation: its finding, the memory series that
//                                  triggered it, the growth step's and the allocation trace's
//                                  reports (the HTML report's page, report/html_writer.h)
//   GET /api/reports/<id>          its investigation.json
//   GET /api/reports/<id>/<file>   one of its stored files, with its content type
// Only ids in the index and files its entry lists are served, opened beneath reports_dir
// without following symbolic links; anything else is 404.  Every name in a page is escaped
// (report/html.h) and every page carries the Content-Security-Policy.
//
// The handlers are plain functions of the store and the path (tested without a server);
// register_report_pages() routes them on the agent's HTTP server (GET, and so HEAD, only).
// Thread-safety: as ReportStore (called on the server's threads).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/report_store.h"

namespace httplib {
class Server;
}

namespace leakwatch::agent {

class Agent;

struct HttpReply {
  int status = 404;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body = "not found\n";
  std::vector<std::pair<std::string, std::string>> headers;
};

HttpReply reports_index_page(const ReportStore& store);
HttpReply report_page(const ReportStore& store, std::string_view id);
HttpReply report_file(const ReportStore& store, std::string_view id, std::string_view file);

// The content type a stored file is served with ("" for a name the store never writes).
std::string stored_file_type(std::string_view file);

void register_report_pages(httplib::Server& server, const Agent& agent);

}  // namespace leakwatch::agent
