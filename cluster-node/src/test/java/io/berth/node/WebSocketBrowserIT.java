package io.berth.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.io.InputStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * A browser device: headless Chromium (Debian {@code chromium} and {@code chromium-driver},
 * installed by scripts/test.sh) runs a page with the JavaScript device client
 * (protocol/js/berth-device.js), which round-trips 1,000 messages through the {@code echo} mapping
 * over the WebSocket port of a two-node cluster. Midway the test drains the node the browser is
 * connected to, so the client follows a REDIRECT to the other node's WebSocket port, and later
 * the page drops its connection without a CLOSE, so the client resumes and resends: every
 * message is echoed once and in order.
 */
class WebSocketBrowserIT {

  private static final int COUNT = 1_000;
  private static final Duration BROWSER_WAIT = Duration.ofMinutes(3);

  @TempDir
  Path page;
  private Path chromium;
  private Path chromedriver;

  @BeforeEach
  void findTheBrowser() {
    chromium = onPath("chromium", "chromium-browser");
    chromedriver = onPath("chromedriver");
    Assumptions.assumeTrue(chromium != null && chromedriver != null, "WebSocketBrowserIT skipped: no headless "
        + "Chromium and chromedriver on PATH (the Debian packages chromium and chromium-driver; scripts/test.sh "
        + "installs them where it may use apt-get)");
  }

  @Test
  void aBrowserRoundTripsAThousandMessagesThroughARedirectAndALostConnection() throws Exception {
    Path client = Path.of("..", "protocol", "js", "berth-device.js").toAbsolutePath().normalize();
    assertThat(client).exists();
    Files.copy(client, page.resolve("berth-device.js"), StandardCopyOption.REPLACE_EXISTING);
    try (InputStream html = WebSocketBrowserIT.class.getResourceAsStream("/websocket/device-page.html")) {
      Files.copy(html, page.resolve("device.html"), StandardCopyOption.REPLACE_EXISTING);
    }

    try (TestNodes nodes = new TestNodes("berth.edge.websocket.enabled = on").start(2)) {
      TestNodes.Node first = nodes.node(0);
      String device = TestNodes.uniqueDevice("browser");
      String settings = "{\"urls\":[\"" + first.websocketUrl() + "\",\"" + nodes.node(1).websocketUrl() + "\"],"
          + "\"deviceId\":\"" + device + "\",\"token\":\"" + RawDevice.token(device, Instant.now().plusSeconds(3600))
          + "\",\"count\":" + COUNT + ",\"drainAt\":300,\"dropAt\":650}";
      String url = page.resolve("device.html").toUri() + "#"
          + URLEncoder.encode(settings, StandardCharsets.UTF_8).replace("+", "%20");

      WebDriver browser = webDriver();
      String drain = first.managementUrl() + "/api/nodes/" + first.address().host().get() + ":"
          + first.address().port().get() + "/drain";
      try {
        browser.get(url);
        await().atMost(BROWSER_WAIT).pollInterval(Duration.ofMillis(100)).until(() ->
            phase(browser).equals("waiting-for-drain") || phase(browser).equals("failed"));
        assertThat(phase(browser)).as(log(browser)).isEqualTo("waiting-for-drain");
        HttpProbe.Response drained = HttpProbe.send("POST", drain, null);
        assertThat(drained.status()).as(drained.body()).isBetween(200, 299);
        ((JavascriptExecutor) browser).executeScript("window.berthGo = true;");
        await().atMost(BROWSER_WAIT).pollInterval(Duration.ofMillis(250)).until(() ->
            phase(browser).equals("done") || phase(browser).equals("failed"));
        String result = String.valueOf(((JavascriptExecutor) browser).executeScript("return document.body.dataset.result"));
        System.out.println("FIGURE websocket browser: " + result);
        assertThat(result).as(log(browser))
            .contains("\"echoed\":" + COUNT).contains("\"distinct\":" + COUNT).contains("\"duplicates\":0")
            .contains("\"inOrder\":true");
        assertThat(number(result, "redirects")).as("followed the drain's REDIRECT").isGreaterThanOrEqualTo(1);
        assertThat(number(result, "welcomes")).as("first node, redirect target, after the drop")
            .isGreaterThanOrEqualTo(3);
        assertThat(log(browser)).as("redirected to the other node's WebSocket port")
            .contains("redirected: ws://127.0.0.1:" + nodes.node(1).websocketPort() + "/devices");
      } finally {
        browser.quit();
        HttpProbe.send("DELETE", drain, null);
      }
    }
  }

  private static String phase(WebDriver browser) {
    return String.valueOf(((JavascriptExecutor) browser).executeScript("return document.body.dataset.phase"));
  }

  private static String log(WebDriver browser) {
    return "the page's log:\n" + ((JavascriptExecutor) browser).executeScript(
        "return document.getElementById('log').textContent");
  }

  private static long number(String json, String field) {
    return Long.parseLong(json.replaceAll("(?s).*\"" + field + "\":(\\d+).*", "$1"));
  }

  private WebDriver webDriver() throws IOException {
    ChromeOptions options = new ChromeOptions();
    options.setBinary(chromium.toFile());
    options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--user-data-dir=" + Files.createTempDirectory(page, "chromium-"));
    ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(chromedriver.toFile())
        .withLogFile(page.resolve("chromedriver.log").toFile()).build();
    WebDriver driver = new ChromeDriver(service, options);
    driver.manage().timeouts().pageLoadTimeout(Duration.ofMinutes(1));
    return driver;
  }

  private static Path onPath(String... names) {
    return Stream.of(names)
        .flatMap(name -> Stream.of(System.getenv().getOrDefault("PATH", "").split(":")).map(d -> Path.of(d, name)))
        .filter(Files::isExecutable).findFirst().orElse(null);
  }
}
