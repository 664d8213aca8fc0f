package io.berth.node; final class Main { public static void main(String[] a){} }
