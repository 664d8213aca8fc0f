package io.berth.persistence;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.SQLException;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.h2.tools.Server;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The embedded database of the local launch: an H2 server on loopback, shared by every node
 * started by {@code scripts/cluster.sh}. Runs until the process is stopped.
 */
@Command(name = "berth-h2", mixinStandardHelpOptions = true,
    description = "Runs the embedded H2 database server shared by local Berth nodes.")
public final class EmbeddedDatabase implements Callable<Integer> {

  @Option(names = "--port", defaultValue = "9092", description = "TCP port on 127.0.0.1 (default ${DEFAULT-VALUE})")
  int port;

  @Option(names = "--dir", defaultValue = "berth-data", description = "Directory holding the database files (default ${DEFAULT-VALUE})")
  Path dir;

  /** The JDBC URL nodes use for the server started on {@code port}. */
  public static String url(int port) {
    return "jdbc:h2:tcp://127.0.0.1:" + port + "/berth";
  }

  @Override
  public Integer call() throws Exception {
    Files.createDirectories(dir);
    Server server;
    try {
      // -ifNotExists lets the first node create the database; the server only listens on loopback.
      server = Server.createTcpServer("-tcpPort", Integer.toString(port), "-baseDir",
          dir.toAbsolutePath().toString(), "-ifNotExists").start();
    } catch (SQLException e) {
      System.err.println("cannot start the H2 server on port " + port + ": " + e.getMessage());
      return 1;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(server::stop, "h2-shutdown"));
    System.out.println("H2 server ready: " + url(port) + " (files in " + dir.toAbsolutePath() + ")");
    new CountDownLatch(1).await();
    return 0;
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new EmbeddedDatabase()).execute(args));
  }
}
