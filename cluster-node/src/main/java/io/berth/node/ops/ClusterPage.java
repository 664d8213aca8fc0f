package io.berth.node.ops;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResource;
import static org.apache.pekko.http.javadsl.server.Directives.getFromResourceDirectory;
import static org.apache.pekko.http.javadsl.server.Directives.pathEnd;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.pathSingleSlash;
import static org.apache.pekko.http.javadsl.server.Directives.redirect;
import static org.apache.pekko.http.javadsl.server.Directives.respondWithHeaders;

import java.util.List;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.Uri;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * The cluster page (docs/page.md): three static files from the jar, {@code /ui/} and what it
 * loads, served by every node's management port without a key. They hold no data: the page asks
 * its operator for a key and reads the cluster through {@code /api} with it, behind the gate like
 * any caller. So the gate lets {@code GET} of these paths through to this route alone, never to
 * Management's routes: a path under {@code /ui} that names no file is a 404 here.
 */
final class ClusterPage {

  private static final String RESOURCES = "berth/ui";

  /**
   * Scripts and styles only from the node itself, no inline script (data shown by the page is
   * text, never markup, but a mistake there could not run code), no framing, no form posts.
   * {@code no-cache}: a node started from a new jar serves its own page at the next load, and
   * revalidating three small files costs nothing.
   */
  private static final List<HttpHeader> HEADERS = List.of(
      RawHeader.create("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self';"
          + " img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
      RawHeader.create("X-Content-Type-Options", "nosniff"),
      RawHeader.create("Referrer-Policy", "no-referrer"),
      RawHeader.create("Cache-Control", "no-cache"));

  private ClusterPage() {}

  /** Whether the gate hands this request to the page: {@code GET /}, {@code /ui} and below. */
  static boolean serves(String method, List<String> path) {
    return method.equals("GET") && (path.isEmpty() || path.get(0).equals("ui"));
  }

  static Route route() {
    return respondWithHeaders(HEADERS, () -> concat(
        pathSingleSlash(() -> redirect(Uri.create("/ui/"), StatusCodes.FOUND)),
        pathPrefix("ui", () -> concat(
            // The page loads its files by relative paths: it must be /ui/, not /ui.
            pathEnd(() -> redirect(Uri.create("/ui/"), StatusCodes.MOVED_PERMANENTLY)),
            pathSingleSlash(() -> getFromResource(RESOURCES + "/index.html")),
            getFromResourceDirectory(RESOURCES))),
        complete(StatusCodes.NOT_FOUND, HttpEntities.create(ContentTypes.APPLICATION_JSON,
            "{\"error\":\"not found\"}"))));
  }
}
