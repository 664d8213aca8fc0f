package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.berth.node.LaunchScripts.Result;
import io.berth.persistence.DatabaseSettings;
import io.berth.persistence.TestDatabase;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * The cluster page (docs/page.md) in a real browser: {@code scripts/cluster.sh up} launches three
 * nodes, a device streams, a socket is moved by hand, and headless Chromium opens the page of
 * node 1 with the admin key in the URL's fragment, as an operator would. The page must show the
 * three nodes and that migration; a screenshot goes to {@code target/cluster-page/page.png}.
 *
 * <p>Skipped when no Chromium is installed ({@code scripts/test.sh} installs it as root on
 * Debian). Then its buttons, clicked through chromedriver (Selenium WebDriver): Replay, Drain and
 * Stop draining, with an operator's key and with a viewer's. Uses the launch's fixed ports, like {@code ProcessClusterIT}: it waits for another
 * cluster on them to stop rather than fail.
 */
class ClusterPageIT {

  private static final Duration BROWSER_TIMEOUT = Duration.ofSeconds(90);
  private static final Duration PORTS_WAIT = Duration.ofMinutes(20);
  private static final List<Integer> PORTS = IntStream.rangeClosed(1, 3)
      .flatMap(i -> IntStream.of(7000 + i, 7080 + i, 1890 + i, 8550 + i, 2550 + i)).boxed().toList();

  @TempDir
  Path runDir;

  private static final String ENDPOINT_SECRET = "page-endpoint-secret-0123456789";

  private final List<Process> devices = new ArrayList<>();
  private DatabaseSettings db;
  private Path chromium;
  private Path chromedriver;

  @BeforeEach
  void needsChromiumAndTheLaunchPorts() {
    chromium = onPath("chromium", "chromium-browser");
    chromedriver = onPath("chromedriver");
    Assumptions.assumeTrue(chromium != null && chromedriver != null, "ClusterPageIT skipped: no headless Chromium"
        + " and chromedriver on PATH (install the Debian packages chromium and chromium-driver; scripts/test.sh does"
        + " when it runs as root)");
  }

  private static Path onPath(String... names) {
    return Stream.of(names)
        .flatMap(name -> Stream.of(System.getenv().getOrDefault("PATH", "").split(":")).map(d -> Path.of(d, name)))
        .filter(Files::isExecutable).findFirst().orElse(null);
  }

  @AfterEach
  void down() throws Exception {
    for (Process device : devices) {
      device.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    }
    run(List.of("bash", script("cluster.sh"), "down"), Map.of());
    if (db != null) {
      TestDatabase.dropDatabase(db);
    }
    Path kept = Path.of("target", "cluster-page", "logs");
    Files.createDirectories(kept);
    try (var logs = Files.newDirectoryStream(runDir, "*.{log,err}")) {
      for (Path log : logs) {
        Files.copy(log, kept.resolve(log.getFileName()), StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }

  @Test
  void thePageShowsTheNodesAndAMigrationCausedMeanwhile() throws Exception {
    // A database of its own: the launch seals the mappings made here with its own secrets key,
    // which the in-JVM tests sharing the test database do not hold.
    db = TestDatabase.createScratchDatabase();
    // A low threshold makes the streaming device hot (the page lists it); a sustain of an hour
    // keeps it from moving by itself, so the one migration is the one asked for here.
    Result up = upWhenThePortsAreFree(List.of("bash", script("cluster.sh"), "up", "-n", "3", "--db", db.url(), "--",
        "-Dberth.migration.socket-threshold.frames-per-second=20", "-Dberth.migration.sustain=1h",
        "-Dberth.endpoints.allowed-hosts.0=127.0.0.1"),
        Map.of("BERTH_DB_USER", db.user(), "BERTH_DB_PASSWORD", db.password()));
    assertThat(up.code()).as(up.output()).isZero();
    assertThat(up.output()).contains("page:          https://127.0.0.1:8551/ui/");
    String key = Files.readString(runDir.resolve("admin-key")).strip();
    HttpProbe management = HttpProbe.trusting(runDir.resolve("tls").resolve("ca.pem"), key);

    // A device streaming some 60 lines a second, and two devices linked to each other.
    String socket = TestNodes.uniqueDevice("page");
    AtomicBoolean streaming = new AtomicBoolean(true);
    AtomicInteger sent = new AtomicInteger();
    Process device = startDevice("device.err", "--connect", "127.0.0.1:7002", "--device", socket, "--mapping",
        "echo");
    Thread writer = new Thread(() -> {
      try (OutputStream in = device.getOutputStream()) {
        while (streaming.get()) {
          in.write(("line-" + sent.incrementAndGet() + "\n").getBytes(StandardCharsets.UTF_8));
          in.flush();
          Thread.sleep(15);
        }
      } catch (IOException | InterruptedException e) {
        // The device is stopped after the test.
      }
    });
    writer.start();
    String room = TestNodes.uniqueDevice("room");
    startDevice("pair-a.err", "--connect", "127.0.0.1:7001", "--device", "a-" + room, "--socket", "room", "--mapping",
        "pair");
    startDevice("pair-b.err", "--connect", "127.0.0.1:7003", "--device", "b-" + room, "--socket", "room", "--mapping",
        "pair");

    String[] from = new String[1];
    await().atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(500)).until(() -> {
      HttpProbe.Response r = management.fetch("https://127.0.0.1:8551/api/sockets/" + socket);
      from[0] = r.body().replaceAll("(?s).*\"node\":\"pekko://berth@([^\"]*)\".*", "$1");
      return r.status() == 200 && r.body().contains("\"state\":\"open\"") || !device.isAlive();
    });
    assertThat(device.isAlive()).as(Files.readString(runDir.resolve("device.err"))).isTrue();
    String to = Stream.of("127.0.0.1:2551", "127.0.0.1:2552", "127.0.0.1:2553").filter(n -> !n.equals(from[0]))
        .findFirst().orElseThrow();
    HttpProbe.Response asked = management.request("POST", "https://127.0.0.1:8552/api/sockets/" + socket
        + "/migrate?to=" + to, null);
    assertThat(asked.status()).as(asked.body()).isEqualTo(202);
    String migration = asked.body().replaceAll("(?s).*\"id\":\"([^\"]*)\".*", "$1");
    await().atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(500)).until(() ->
        management.fetch("https://127.0.0.1:8553/api/migrations/" + migration).body().contains("\"completed\""));

    // The page, as an operator opens it: the key in the fragment, which never reaches the node.
    String url = "https://127.0.0.1:8551/ui/#key=" + key;
    String[] dom = new String[1];
    await().atMost(Duration.ofMinutes(3)).pollInterval(Duration.ofSeconds(1)).until(() -> {
      dom[0] = browse(url, "--dump-dom").orElse("");
      String hot = table(dom[0], "hot");
      return dom[0].contains("data-state=\"ready\"") && dom[0].contains(migration) && hot.contains(socket)
          && hot.contains(to);
    });
    String page = dom[0];
    for (String node : List.of("127.0.0.1:2551", "127.0.0.1:2552", "127.0.0.1:2553")) {
      assertThat(page).as("the page shows node %s", node).contains("data-node=\"" + node + "\"");
    }
    String row = page.substring(page.indexOf("data-migration=\"" + migration + "\""));
    row = row.substring(0, row.indexOf("</tr>"));
    assertThat(row).as("the migration's row").contains(socket).contains(">manual<").contains(from[0])
        .contains(to).contains("completed");
    assertThat(table(page, "hot")).as("the streaming socket is hot, on its new node").contains(to);
    assertThat(page).as("the key is not shown").doesNotContain(key);

    Path shot = Path.of("target", "cluster-page", "page.png").toAbsolutePath();
    Files.createDirectories(shot.getParent());
    Files.deleteIfExists(shot);
    Optional<String> shown = browse(url, "--screenshot=" + shot);
    assertThat(shown).as("the browser took the screenshot").isPresent();
    byte[] png = Files.readAllBytes(shot);
    assertThat(png.length).isGreaterThan(10_000);
    assertThat(new String(png, 1, 3, StandardCharsets.US_ASCII)).isEqualTo("PNG");
    System.out.printf("FIGURE cluster page: 3 nodes and migration %s of %s (%s -> %s) shown; screenshot %s%n",
        migration, socket, from[0], to, shot);

    theButtonsActOnTheCluster(management, key);
    streaming.set(false);
    writer.join(10_000);
  }

  /**
   * The page's buttons, clicked in the browser through chromedriver: with a viewer key Drain says
   * it needs an operator key and changes nothing; with the admin key Replay sends a parked batch
   * to its endpoint again, and Drain (confirmed in the browser's dialog) drains node 3, whose
   * readiness flips, until Stop draining.
   */
  private void theButtonsActOnTheCluster(HttpProbe management, String adminKey) throws Exception {
    try (TestEndpoint endpoint = new TestEndpoint(ENDPOINT_SECRET)) {
      endpoint.answer(call -> TestEndpoint.Answer.status(422));
      String mapping = TestNodes.uniqueDevice("parking");
      HttpProbe.Response saved = management.request("PUT", "https://127.0.0.1:8551/api/mappings/" + mapping,
          "{\"endpoint\":\"" + endpoint.url() + "\",\"secret\":\"" + ENDPOINT_SECRET + "\",\"events\":[\"data\"]}");
      assertThat(saved.status()).as(saved.body()).isEqualTo(200);
      String socket = TestNodes.uniqueDevice("parked");
      Process device = startDevice("parked.err", "--connect", "127.0.0.1:7001", "--device", socket, "--mapping",
          mapping);
      device.getOutputStream().write("precious\n".getBytes(StandardCharsets.UTF_8));
      device.getOutputStream().flush();
      String[] parked = new String[1];
      await().atMost(Duration.ofMinutes(1)).pollInterval(Duration.ofMillis(500)).until(() -> {
        String body = management.fetch("https://127.0.0.1:8551/api/parked?socket=" + socket).body();
        parked[0] = body.replaceAll("(?s).*?\"id\":\"([^\"]+)\".*", "$1");
        return body.contains("refused: HTTP 422");
      });
      endpoint.answer(call -> TestEndpoint.Answer.ok());

      // Keys live in the database, which other runs share: an id of this run's.
      String viewerId = TestNodes.uniqueDevice("page-viewer");
      HttpProbe.Response made = management.request("POST", "https://127.0.0.1:8551/api/keys",
          "{\"id\": \"" + viewerId + "\", \"role\": \"viewer\", \"description\": \"ClusterPageIT\"}");
      assertThat(made.status()).as(made.body()).isEqualTo(201);
      String viewerKey = made.body().replaceAll("(?s).*\"key\":\"([^\"]+)\".*", "$1");
      String node3 = "127.0.0.1:2553";
      WebDriver browser = webDriver();
      try {
        open(browser, viewerKey);
        click(browser, By.cssSelector("[data-node='" + node3 + "'] button"), "Drain");
        browser.switchTo().alert().accept();
        awaitMessage(browser, "Not allowed: drain a node needs an operator key");
        assertThat(draining(management, node3)).as("a viewer's click drains nothing").isFalse();

        open(browser, adminKey);
        click(browser, By.cssSelector("tr[data-parked='" + parked[0] + "'] button"), "Replay");
        awaitMessage(browser, "sent again: endpoint answered 204");
        assertThat(endpoint.calls("data")).as("the endpoint was called again").hasSize(2);
        assertThat(endpoint.calls("data").get(1).text()).isEqualTo("precious");
        assertThat(management.fetch("https://127.0.0.1:8551/api/parked/" + parked[0]).body()).contains("replayedAt");

        click(browser, By.cssSelector("[data-node='" + node3 + "'] button"), "Drain");
        assertThat(browser.switchTo().alert().getText()).startsWith("Drain " + node3 + "?");
        browser.switchTo().alert().accept();
        awaitMessage(browser, node3 + " is draining");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500)).until(() ->
            draining(management, node3) && management.fetch("https://127.0.0.1:8553/ready").status() != 200
                && classOf(browser, "[data-node='" + node3 + "']").contains("draining"));

        click(browser, By.cssSelector("[data-node='" + node3 + "'] button"), "Stop draining");
        browser.switchTo().alert().accept();
        awaitMessage(browser, node3 + " is no longer draining");
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500)).until(() ->
            !draining(management, node3) && management.fetch("https://127.0.0.1:8553/ready").status() == 200);
      } finally {
        browser.quit();
        management.request("DELETE", "https://127.0.0.1:8551/api/keys/" + viewerId, null);
      }
      System.out.println("FIGURE cluster page: Replay sent parked batch " + parked[0] + " again; Drain and Stop"
          + " draining of " + node3 + " confirmed in the browser; a viewer's Drain refused");
    }
  }

  /** Chromium under chromedriver, at a laptop's screen size, trusting the test cluster's certificate. */
  private WebDriver webDriver() throws IOException {
    ChromeOptions options = new ChromeOptions();
    options.setBinary(chromium.toFile());
    options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--window-size=1366,768", "--user-data-dir=" + Files.createTempDirectory(runDir, "chromium-"));
    options.setAcceptInsecureCerts(true);
    ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(chromedriver.toFile())
        .withLogFile(runDir.resolve("chromedriver.log").toFile()).build();
    WebDriver driver = new ChromeDriver(service, options);
    driver.manage().timeouts().pageLoadTimeout(BROWSER_TIMEOUT);
    return driver;
  }

  /** Opens node 1's page with {@code key} in the fragment, as a new document, and waits for its data. */
  private static void open(WebDriver browser, String key) {
    browser.get("about:blank");
    browser.get("https://127.0.0.1:8551/ui/#key=" + key);
    await().atMost(BROWSER_TIMEOUT).pollInterval(Duration.ofMillis(250)).until(() ->
        "ready".equals(browser.findElement(By.tagName("body")).getAttribute("data-state"))
            && browser.findElements(By.cssSelector("[data-node]")).size() == 3);
  }

  /**
   * Clicks the element {@code where} once it shows {@code label}. The page redraws its tables
   * every refresh, so the element is looked up again until the click lands on a current one.
   */
  private static void click(WebDriver browser, By where, String label) {
    await().atMost(BROWSER_TIMEOUT).pollInterval(Duration.ofMillis(250)).ignoreExceptions().until(() -> {
      WebElement button = browser.findElement(where);
      if (!label.equals(button.getText())) {
        return false;
      }
      button.click();
      return true;
    });
  }

  /**
   * The class of the element {@code selector} selects, read inside the page in one step: the page
   * redraws its cards every refresh, so an element found first and read after may be gone.
   */
  private static String classOf(WebDriver browser, String selector) {
    Object found = ((JavascriptExecutor) browser).executeScript(
        "const e = document.querySelector(arguments[0]); return e ? e.className : '';", selector);
    return String.valueOf(found);
  }

  /** Waits for the page's message line to say {@code text}; fails with what it says instead. */
  private static void awaitMessage(WebDriver browser, String text) {
    String[] said = {""};
    try {
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(250)).ignoreExceptions().until(() -> {
        said[0] = browser.findElement(By.id("message")).getText();
        return said[0].contains(text);
      });
    } catch (ConditionTimeoutException e) {
      throw new AssertionError("the page says \"" + said[0] + "\", not \"" + text + "\"; the message box: "
          + browser.findElement(By.id("message")).getAttribute("outerHTML"), e);
    }
  }

  private static boolean draining(HttpProbe management, String node) {
    String nodes = management.fetch("https://127.0.0.1:8551/api/nodes").body();
    int at = nodes.indexOf("@" + node + "\"");
    return at >= 0 && nodes.substring(at, nodes.indexOf('}', at)).contains("\"draining\":true");
  }

  /**
   * Opens {@code url} in headless Chromium at a laptop's screen size, lets the page run for some
   * seconds of its own clock (its refreshes included), then does {@code action}: its standard
   * output, or empty when the browser failed or timed out. The key is on the browser's command
   * line: a throwaway cluster's, on the machine that runs the test.
   */
  private Optional<String> browse(String url, String action) throws Exception {
    Path profile = Files.createTempDirectory(runDir, "chromium-");
    ProcessBuilder pb = new ProcessBuilder(chromium.toString(), "--headless=new", "--no-sandbox", "--disable-gpu",
        "--hide-scrollbars", "--no-first-run", "--ignore-certificate-errors", "--user-data-dir=" + profile,
        "--window-size=1366,768", "--virtual-time-budget=8000", action, url)
        .redirectError(runDir.resolve("chromium.err").toFile());
    Process browser = pb.start();
    byte[] out = browser.getInputStream().readAllBytes();
    if (!browser.waitFor(BROWSER_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
      browser.destroyForcibly();
      return Optional.empty();
    }
    return browser.exitValue() == 0 ? Optional.of(new String(out, StandardCharsets.UTF_8)) : Optional.empty();
  }

  /** The markup of the page's table {@code id}. */
  private static String table(String page, String id) {
    int start = page.indexOf("<table id=\"" + id + "\"");
    return start < 0 ? "" : page.substring(start, page.indexOf("</table>", start));
  }

  /**
   * Another cluster of the launch script (another run of the process tests on this machine) may
   * hold the fixed ports, or take them between the look and the launch: wait for them, and launch
   * again when a node found its port taken.
   */
  private Result upWhenThePortsAreFree(List<String> up, Map<String, String> env) throws Exception {
    long deadline = System.nanoTime() + PORTS_WAIT.toNanos();
    while (true) {
      await().atMost(Duration.ofNanos(Math.max(1, deadline - System.nanoTime()))).pollInterval(Duration.ofSeconds(5))
          .until(() -> PORTS.stream().noneMatch(ClusterPageIT::listening));
      Result result = run(up, env);
      if (result.code() == 0 || !result.output().contains("Address already in use") || System.nanoTime() > deadline) {
        return result;
      }
      run(List.of("bash", script("cluster.sh"), "down"), Map.of());
    }
  }

  private static boolean listening(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 300);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** {@code scripts/device.sh} with these arguments, its stderr going to {@code stderr} in the run directory. */
  private Process startDevice(String stderr, String... args) throws IOException {
    Process p = scripts().device(stderr, args).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    devices.add(p);
    return p;
  }

  private LaunchScripts scripts() {
    return new LaunchScripts(runDir);
  }

  private Result run(List<String> command, Map<String, String> extraEnv) throws Exception {
    return scripts().run(command, extraEnv);
  }

  private static String script(String name) {
    return LaunchScripts.script(name);
  }
}
