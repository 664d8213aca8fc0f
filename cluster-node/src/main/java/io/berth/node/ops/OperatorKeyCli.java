package io.berth.node.ops;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Makes an operator key for a node's configuration (docs/operator-access.md#keys), without a
 * node: {@code java -cp berth-node.jar io.berth.node.ops.OperatorKeyCli --id alice --role admin}
 * prints the key, for its operator, and the entry for {@code berth.management.keys}
 * ({@code BERTH_OPERATOR_KEYS}), which holds only its hash. With {@code --entry-only} it reads a
 * key from standard input and prints its entry: a key made elsewhere, hashed the same way.
 */
@Command(name = "operator-key", mixinStandardHelpOptions = true,
    description = {"Makes a Berth operator key and prints it with its configuration entry.",
        "Exit codes: 0 done, 1 bad input, 2 bad arguments."})
public final class OperatorKeyCli implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Option(names = "--id", required = true, description = "The key's id: who or what uses it (alice, ci-deploy).")
  String id;

  @Option(names = "--role", required = true, description = "viewer, operator or admin.")
  String role;

  @Option(names = "--entry-only", description = "Read a key from standard input; print only its entry.")
  boolean entryOnly;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    OperatorRole parsedRole;
    try {
      parsedRole = OperatorRole.of(role);
      if (!OperatorKey.ID.matcher(id).matches()) {
        throw new IllegalArgumentException("--id: 1 to 32 letters, digits, '_' or '-', starting with a letter or digit");
      }
    } catch (IllegalArgumentException e) {
      err.println(e.getMessage());
      return 1;
    }
    if (entryOnly) {
      String key = new String(System.in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).strip();
      if (!OperatorKey.idOf(key).map(id::equals).orElse(false)
          || key.length() - id.length() - 1 < OperatorKey.MIN_SECRET_LENGTH) {
        err.println("standard input does not hold a key of the form " + id + ".SECRET, its secret at least "
            + OperatorKey.MIN_SECRET_LENGTH + " base64url characters (32 random bytes)");
        return 1;
      }
      out.println(new OperatorKey(id, parsedRole, OperatorKey.hash(key)).entry());
      return 0;
    }
    String key = OperatorKey.newKey(id);
    out.println("key:   " + key);
    out.println("entry: " + new OperatorKey(id, parsedRole, OperatorKey.hash(key)).entry());
    err.println("The key is shown this once: give it to its operator. Add the entry to berth.management.keys"
        + " (BERTH_OPERATOR_KEYS) on every node.");
    return 0;
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new OperatorKeyCli()).execute(args));
  }
}
