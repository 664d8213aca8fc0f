package io.berth.node;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;

/** How the node's packages may depend on each other (docs/packages.md), checked on its classes. */
@AnalyzeClasses(packages = "io.berth.node", importOptions = ImportOption.DoNotIncludeTests.class)
class PackageRulesTest {

  /**
   * One slice per package, a package and its api being different slices: socket may use
   * socket.api and edge.api while edge uses socket.api, but no two packages use each other,
   * directly or around a loop. Matched from io.berth so that the root package (slice "node") is
   * a slice too: "io.berth.node.(**)" leaves it out.
   */
  @ArchTest
  static final ArchRule packagesDoNotDependOnEachOtherInACycle =
      slices().matching("io.berth.(**)").should().beFreeOfCycles();

  /** BerthNode and Main assemble the node: they use every package, and no package uses them. */
  @ArchTest
  static final ArchRule onlyTheRootPackageUsesTheRootPackage = noClasses()
      .that().resideInAPackage("io.berth.node..").and().resideOutsideOfPackage("io.berth.node")
      .should().dependOnClassesThat().resideInAPackage("io.berth.node");

  /**
   * An api package holds what other packages send to or read of its package: it can be read, and
   * used, without the implementation behind it.
   */
  @ArchTest
  static final ArchRule apiPackagesDoNotDependOnTheirImplementation = classes()
      .that().resideInAPackage("io.berth.node..api")
      .should(notDependOnThePackageTheyAreTheApiOf());

  /**
   * Pekko Management loads the operator routes and readiness checks by class name
   * (management.conf), and the root package, which assembles the node, binds the management port
   * (ManagementServer): they are the outermost adapter, and nothing else in the node calls them.
   */
  @ArchTest
  static final ArchRule nothingDependsOnTheOperatorRoutes = noClasses()
      .that().resideOutsideOfPackages("io.berth.node.ops..", "io.berth.node")
      .should().dependOnClassesThat().resideInAPackage("io.berth.node.ops..");

  /**
   * TLS material and the edge's TLS context stand alone (docs/tls.md): the edge uses them, and the
   * command line that makes certificates runs without the rest of the node.
   */
  @ArchTest
  static final ArchRule theTlsPackageUsesNoOtherNodePackage = noClasses()
      .that().resideInAPackage("io.berth.node.tls..")
      .should().dependOnClassesThat(resideInNodePackageOtherThanTls());

  private static DescribedPredicate<JavaClass> resideInNodePackageOtherThanTls() {
    return JavaClass.Predicates.resideInAPackage("io.berth.node..")
        .and(DescribedPredicate.not(JavaClass.Predicates.resideInAPackage("io.berth.node.tls..")))
        .as("reside in a node package other than tls");
  }

  private static ArchCondition<JavaClass> notDependOnThePackageTheyAreTheApiOf() {
    return new ArchCondition<>("not depend on the package they are the api of") {
      @Override
      public void check(JavaClass c, ConditionEvents events) {
        String api = c.getPackageName();
        String implementation = api.substring(0, api.length() - ".api".length());
        for (Dependency d : c.getDirectDependenciesFromSelf()) {
          if (d.getTargetClass().getPackageName().equals(implementation)) {
            events.add(SimpleConditionEvent.violated(d, d.getDescription()));
          }
        }
      }
    };
  }
}
