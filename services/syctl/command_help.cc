// syctl's command table and help texts (see command_help.h).
#include "services/syctl/command_help.h"

#include <map>

namespace sy::syctl {
namespace {

struct CommandHelp {
  const char* usage;
  const char* summary;
};

const std::map<std::string, CommandHelp>& Commands() {
  static const auto* commands = new std::map<std::string, CommandHelp>{
      {"status",
       {"status", "Cluster summary: phase, step, placement epoch, hosts, trainers, last checkpoint, load balance."}},
      {"hosts",
       {"hosts",
        "Every host and trainer: state (alive, draining, left when gone after finishing or a drain, failed), "
        "actors, load, step, device, endpoint."}},
      {"experts", {"experts", "Every expert: the hosts serving it, tokens in the last step, moving load."}},
      {"checkpoint", {"checkpoint now | list | restore K",
                      "now: take a checkpoint at the current step boundary (prints its id);\n"
                      "  list: committed checkpoints; restore K: restore checkpoint K and roll the trainers back."}},
      {"rebalance", {"rebalance [--dry_run] [--threshold=X]",
                     "Move or replicate hot experts until max/mean host load <= X (default: the coordinator's,\n"
                     "  1.25); --dry_run only shows the planned moves."}},
      {"drain", {"drain HOST", "Move every actor off HOST; then it may exit."}},
      {"remove",
       {"remove HOST", "Treat HOST as failed: re-place its actors and recover them from the latest checkpoint."}},
      {"faults", {"faults SPEC|clear [--node=ID]",
                  "Set transport fault injection (e.g. drop=0.1,dup=0.05,delay_ms=20,seed=7) on the\n"
                  "  coordinator, or on node ID; 'clear' removes it. For tests."}},
      {"keygen", {"keygen | keygen --cluster=DIR --hosts=N --trainers=M --operators=K | "
                  "keygen --cluster=DIR --add ROLE NAME",
                  "Without --cluster: print a fresh CurveZMQ key pair (Z85) as 'public KEY' and 'secret KEY'\n"
                  "  lines (the --admin_listen keys). --cluster: write a cluster key directory, one NAME.key\n"
                  "  per node (mode 0600) and the allowlist (ROLE NAME KEY); --add: add one node (ROLE:\n"
                  "  host, trainer, operator) to it. Needs no coordinator."}},
      {"top", {"top [--iterations=N]",
               "A live view of status, hosts and experts with their load, redrawn every second; q or Ctrl-C\n"
               "  quits, --iterations=N stops after N refreshes."}},
      {"help", {"help [command]", "This text, or one command's."}},
  };
  return *commands;
}

}  // namespace

bool IsCommand(const std::string& name) { return Commands().count(name) != 0; }

void PrintHelp(std::ostream& out) {
  out << "syctl: admin CLI of a Switchyard cluster\n\n"
         "usage: syctl --coordinator=ADDR [--keys=DIR [--as=NAME] | --admin_key_file=FILE] [--json]\n"
         "             [--timeout_ms=N] <command> [args]\n\n"
         "  --keys=DIR             connect over CurveZMQ as operator --as (default operator-0) of the\n"
         "                         cluster key directory DIR (needed unless the cluster runs --insecure)\n"
         "  --coordinator=ADDR     coordinator endpoint, tcp://HOST:PORT (or HOST:PORT); with\n"
         "                         --admin_key_file, its --admin_listen endpoint\n"
         "  --admin_key_file=FILE  connect over CurveZMQ with the keys in FILE (needed when the\n"
         "                         coordinator runs with --admin_keys)\n"
         "  --json                 one JSON document instead of tables\n"
         "  --timeout_ms=N         give up after N ms without an answer (default 5000)\n\n"
         "commands:\n";
  for (const auto& [name, help] : Commands()) out << "  " << help.usage << "\n";
  out << "\nadmin key files (40-character Z85 keys from `syctl keygen`; '#' starts a comment line):\n"
         "  syctl --admin_key_file:        client_public KEY / client_secret KEY (one admin's pair) /\n"
         "                                 server_public KEY (the coordinator's), one per line\n"
         "  sy-coordinator --admin_keys:   server_secret KEY / server_public KEY (its pair) /\n"
         "                                 admin NAME KEY (an authorised client_public; one or more lines)\n"
         "  an admin key the coordinator does not list is refused: exit 1, PERMISSION_DENIED\n"
         "\nexit codes: 0 ok, 1 command failed, 2 bad usage, 3 coordinator unreachable\n"
         "`syctl <command> --help` describes one command.\n";
}

void PrintCommandHelp(const std::string& name, std::ostream& out) {
  const CommandHelp& help = Commands().at(name);
  out << "usage: syctl --coordinator=ADDR [--json] " << help.usage << "\n  " << help.summary << "\n";
}

}  // namespace sy::syctl
